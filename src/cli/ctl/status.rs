//! `seqctl status`: where a plan stands, as a table a person can paste into a chat, or as the
//! whole picture in JSON.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use chrono::{DateTime, FixedOffset, Utc};

use super::{look, Output};
use crate::format::timefmt;
use crate::report::picture::{Picture, Status};
use crate::report::text;

pub fn run(path: &Path) -> Result<Output> {
    let (store, _, picture, now) = look(path)?;
    let mut json = serde_json::to_value(&picture)?;
    json["stateFile"] = store.path().display().to_string().into();
    Ok(Output::ok(render(&picture, now, &local_time), json))
}

/// A time in the reader's zone (see [`local_time`]).
pub type Zone<'a> = &'a dyn Fn(DateTime<Utc>) -> DateTime<FixedOffset>;

/// The text of `status`: a headline, the table, then what is in flight, next, or in the way.
/// Times are UTC, as the file has them; where `zone` is not UTC each is also shown in it.
#[must_use]
pub fn render(p: &Picture, now: DateTime<Utc>, zone: Zone) -> String {
    let local = |iso: &str| local(iso, zone);
    let mut out = String::new();
    // Skipped steps are not done: `1/3 done, 2 skipped`, never `3/3 done`.
    let skipped = if p.skipped > 0 {
        format!(", {} skipped", p.skipped)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "plan {}: {}/{} done{skipped}",
        status_word(p.status),
        p.done,
        p.total
    );
    out.push_str(&table(p, zone));
    for f in &p.running {
        let since = f.since.as_deref().map_or(String::new(), |s| {
            format!(", started {s}{}", paren(&local(s)))
        });
        let elapsed = f.elapsed_ms.map_or(String::new(), |ms| {
            format!(", running for {}", text::duration_ms(ms))
        });
        let pid = f
            .runner_pid
            .map_or(String::new(), |p| format!(" by runner pid {p}"));
        let agent = f
            .agent
            .as_deref()
            .map_or(String::new(), |a| format!(" by agent {a}"));
        let _ = writeln!(
            out,
            "in flight: {} try {}{agent}{since}{elapsed} (lease held{pid})",
            f.step, f.attempt
        );
    }
    if let Some(n) = &p.next {
        let when = if n.due_at <= now {
            "is due now (the next heartbeat starts it)".to_owned()
        } else {
            let local = local(&n.due);
            let local = if local.is_empty() {
                String::new()
            } else {
                format!("{local}, ")
            };
            format!(
                "is due at {} ({local}{})",
                n.due,
                text::relative(n.due_at, now)
            )
        };
        let _ = writeln!(out, "next: {} try {} {when}", n.step, n.attempt);
    }
    if let Some(r) = &p.runner {
        let _ = writeln!(
            out,
            "runner: pid {} holds the lease since {}",
            r.pid, r.since
        );
    }
    if p.paused {
        out.push_str("paused: nothing new starts until `seqctl resume`\n");
    }
    for b in &p.blockers {
        let error = b.error.as_deref().map_or(String::new(), |e| {
            format!("; last error: {}", text::clip(e, 200))
        });
        let _ = writeln!(out, "blocked: {}{error}", text::clip(&b.text, 200));
    }
    if let Some(f) = p
        .failed_step
        .as_ref()
        .filter(|_| p.status == Status::Paused)
    {
        let error = f
            .error
            .as_deref()
            .map_or(String::new(), |e| text::clip(e, 200));
        let _ = writeln!(out, "failed: {} try {}: {error}", f.step, f.tries);
    }
    for row in p.steps.iter().filter(|r| r.reason.is_some()) {
        let _ = writeln!(
            out,
            "{}: {}: {}",
            if row.status == crate::format::schema::StepStatus::Skipped {
                "skipped"
            } else {
                "gave up"
            },
            row.step,
            text::clip(row.reason.as_deref().unwrap_or_default(), 200)
        );
    }
    for note in &p.notes {
        let _ = writeln!(out, "note: {note}");
    }
    if p.status == Status::Success && !p.artifacts.is_empty() {
        let _ = writeln!(out, "artifacts: {}", p.artifacts.join(", "));
    }
    out
}

/// The status as `--json` spells it.
fn status_word(status: Status) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The steps' table: a LOCAL column when some time differs from its UTC reading, an AGENT
/// column once a step names an agent, and WAITS FOR in plans that are more than a list.
fn table(p: &Picture, zone: Zone) -> String {
    let locals: Vec<String> = p
        .steps
        .iter()
        .map(|row| {
            row.when
                .as_deref()
                .map(|w| local(w, zone))
                .unwrap_or_default()
        })
        .collect();
    let with_local = locals.iter().any(|l| !l.is_empty());
    let mut rows = vec![["", "STEP", "TITLE", "STATUS", "TRIES", "WHEN", "TOOK"]
        .map(String::from)
        .to_vec()];
    if with_local {
        rows[0].insert(6, "LOCAL".into());
    }
    let agents = p.steps.iter().any(|r| r.agent.is_some());
    if agents {
        rows[0].push("AGENT".into());
    }
    // What waits for what, in plans that are more than a list.
    if p.graph {
        rows[0].push("WAITS FOR".into());
    }
    for (row, local) in p.steps.iter().zip(&locals) {
        let current = p.current_step.as_deref() == Some(row.step.as_str());
        let mut cells = vec![
            if current && p.status != Status::Success {
                ">"
            } else {
                ""
            }
            .to_owned(),
            text::clip(&row.step, 24),
            text::clip(row.title.as_deref().unwrap_or("-"), 36),
            match &row.items {
                // A forEach step: how many of its items are over.
                Some(items) => {
                    let over = items.done + items.failed + items.skipped;
                    let mut cell = format!("{} {over}/{}", row.status.as_str(), items.total);
                    if items.failed > 0 {
                        let _ = write!(cell, ", {} failed", items.failed);
                    }
                    cell
                }
                None => row.status.as_str().to_owned(),
            },
            row.tries.to_string(),
            time(row.when.as_deref()),
            row.duration_ms.map_or("-".into(), text::duration_ms),
        ];
        if with_local {
            let local = if local.is_empty() { "-" } else { local };
            cells.insert(6, local.to_owned());
        }
        if agents {
            let agent = match (&row.agent, row.tries) {
                (_, 0) => "-",
                (Some(agent), _) => agent,
                (None, _) => crate::core::model::DEFAULT_AGENT,
            };
            cells.push(text::clip(agent, 20));
        }
        if p.graph {
            cells.push(if row.waits_for.is_empty() {
                "-".to_owned()
            } else {
                text::clip(&row.waits_for.join(", "), 30)
            });
        }
        rows.push(cells);
    }
    text::table(&rows)
}

/// A time in the reader's zone: `chrono::Local`, which follows `TZ` and the system's zone.
#[must_use]
pub fn local_time(time: DateTime<Utc>) -> DateTime<FixedOffset> {
    time.with_timezone(&chrono::Local).fixed_offset()
}

/// `13:02:00 +01:00` (with the date when it differs from the UTC date), or nothing where the
/// reader's zone is UTC.
fn local(iso: &str, zone: Zone) -> String {
    let Some(utc) = timefmt::parse(iso) else {
        return String::new();
    };
    let here = zone(utc);
    if here.offset().local_minus_utc() == 0 {
        return String::new();
    }
    if here.date_naive() == utc.date_naive() {
        here.format("%H:%M:%S %:z").to_string()
    } else {
        here.format("%m-%d %H:%M:%S %:z").to_string()
    }
}

/// ` (text)`, or nothing for no text.
fn paren(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(" ({text})")
    }
}

fn time(iso: Option<&str>) -> String {
    iso.and_then(timefmt::parse)
        .map_or_else(|| "-".to_owned(), text::short_time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Liveness;
    use crate::core::{Limits, Plan};
    use crate::format::validate;
    use crate::report::picture::picture;
    use crate::store::lease::{Holder, LeaseState};

    const MID_RUN: &str = r#"{
      "plan": {"steps": {
        "pull-a": {"title": "Pull source A", "instruction": "Download A"},
        "pull-b": {"title": "Pull source B", "instruction": "Download B"},
        "merge": {"title": "Merge", "instruction": "Merge them"}}},
      "stepQueue": ["pull-a", "pull-b", "merge"],
      "currentStep": 1,
      "stepRuns": {
        "pull-a": {"status": "DONE", "tries": 1, "lastRunIso": "2026-02-07T12:00:00Z",
                   "durationMs": 65000, "stdout": "saved data/a.csv\n"},
        "pull-b": {"status": "IN_PROGRESS", "tries": 2, "startedIso": "2026-02-07T12:02:00Z"}},
      "stepDelayMinutes": 2,
      "status": "IN_PROGRESS"}"#;

    fn utc(t: DateTime<Utc>) -> DateTime<FixedOffset> {
        t.fixed_offset()
    }

    fn now() -> DateTime<Utc> {
        timefmt::parse("2026-02-07T12:05:12Z").unwrap()
    }

    #[test]
    fn a_step_in_flight_reads_at_a_glance() {
        let state = Plan::of(&validate::parse(MID_RUN.as_bytes()).unwrap());
        let lease = LeaseState::Held(Some(Holder {
            pid: 4242,
            since: "2026-02-07T12:00:00.000Z".into(),
            step: Some("pull-b".into()),
            attempt: Some(2),
            agent_pgid: Some(4250),
            lost: None,
        }));
        let p = picture(
            &state,
            now(),
            Limits::default(),
            &lease,
            &crate::core::Liveness {
                held_elsewhere: lease.is_held(),
                ..crate::core::Liveness::default()
            },
        );
        assert_eq!(
            render(&p, now(), &utc),
            "\
plan running: 1/3 done
   STEP    TITLE          STATUS       TRIES  WHEN                  TOOK
   pull-a  Pull source A  DONE         1      2026-02-07 12:00:00Z  1m 05s
>  pull-b  Pull source B  IN_PROGRESS  2      2026-02-07 12:02:00Z  3m 12s
   merge   Merge          PENDING      0      -                     -
in flight: pull-b try 2, started 2026-02-07T12:02:00Z, running for 3m 12s (lease held by runner pid 4242)
"
        );
        assert_eq!(p.completed_results[0].result, "saved data/a.csv\n");
    }

    #[test]
    fn local_times_stand_beside_utc_where_the_reader_is_not_on_utc() {
        let state = Plan::of(&validate::parse(MID_RUN.as_bytes()).unwrap());
        let p = picture(
            &state,
            now(),
            Limits::default(),
            &LeaseState::Free,
            &Liveness::free(),
        );
        let paris = |t: DateTime<Utc>| t.with_timezone(&FixedOffset::east_opt(3600).unwrap());
        let text = render(&p, now(), &paris);
        assert!(
            text.contains("WHEN                  LOCAL            TOOK"),
            "{text}"
        );
        assert!(
            text.contains("2026-02-07 12:00:00Z  13:00:00 +01:00  1m 05s"),
            "{text}"
        );
        assert!(
            text.contains("is due at 2026-02-07T12:07:12.000Z (13:07:12 +01:00, in 2m 00s)"),
            "{text}"
        );
        let tokyo = |t: DateTime<Utc>| t.with_timezone(&FixedOffset::east_opt(13 * 3600).unwrap());
        assert!(render(&p, now(), &tokyo).contains("02-08 01:00:00 +13:00"));
    }

    #[test]
    fn without_its_runner_the_step_is_shown_as_interrupted_and_due() {
        let state = Plan::of(&validate::parse(MID_RUN.as_bytes()).unwrap());
        let p = picture(
            &state,
            now(),
            Limits::default(),
            &LeaseState::Free,
            &Liveness::free(),
        );
        assert_eq!(p.status, Status::Waiting);
        let text = render(&p, now(), &utc);
        assert!(
            text.contains("next: pull-b try 3 is due at 2026-02-07T12:07:12.000Z (in 2m 00s)"),
            "{text}"
        );
        assert!(
            text.contains("note: step pull-b try 2 shows IN_PROGRESS but nothing of it runs"),
            "{text}"
        );
    }

    #[test]
    fn a_blocked_plan_names_its_blocker_once_with_the_error() {
        let state = Plan::of(
            &validate::parse(
                br#"{"plan":{"steps":{"s":{"instruction":"x"}}},"stepQueue":["s"],
                "stepRuns":{"s":{"status":"FAILED","tries":3,"error":"no\nnetwork"}},
                "blockers":["s: max retries (3) exceeded","s: max retries (3) exceeded"]}"#,
            )
            .unwrap(),
        );
        let p = picture(
            &state,
            now(),
            Limits::default(),
            &LeaseState::Free,
            &Liveness::free(),
        );
        assert_eq!(p.status, Status::Blocked);
        assert_eq!(p.failed_step.as_ref().unwrap().tries, 3);
        let text = render(&p, now(), &utc);
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("blocked:"))
                .collect::<Vec<_>>(),
            ["blocked: s: max retries (3) exceeded; last error: no network"]
        );
    }
}
