//! The planner's words (`seqctl plan`): what an agent is asked when it is to turn a task into a
//! plan, how its reply is read, and the summary a person confirms. The schema and a worked
//! example go in the prompt, because the agent has never seen this project's file format; a
//! reply that was not a valid plan goes back with every problem named, so the next try can fix
//! them all at once. Running the agent and validating the plan are the caller's.

use std::fmt::Write as _;

use crate::format::schema::State;
use crate::format::text::{printable, without_nul};

/// A plan in the shape the prompt asks for, shown to the agent as an example. It uses the
/// features an agent most often needs (a reference, context, verify, required outputs) and no
/// named agent, since an operator may have none. A unit test keeps it valid.
pub const EXAMPLE: &str = r#"{
  "plan": {
    "steps": {
      "find": {
        "title": "Find sources",
        "instruction": "Find the five most cited papers on topic X. Print, for each, its title, authors, year and main finding in one sentence.",
        "verify": { "minChars": 200 }
      },
      "notes": {
        "title": "Write notes",
        "instruction": "Using these sources:\n{{steps.find.result}}\nwrite a one-page summary of where they agree and disagree to study/notes.md.",
        "requiredOutputs": ["study/notes.md"]
      },
      "review": {
        "title": "Review notes",
        "instruction": "Read study/notes.md and print every claim in it that the sources do not support, or NONE.",
        "context": "all",
        "maxRetries": 2
      }
    }
  },
  "stepQueue": ["find", "notes", "review"],
  "stepDelayMinutes": 0
}"#;

/// The fields a plan may use, for the prompt: every field `seqctl init --plan` takes from an
/// author (progress fields are the engine's and left out).
const SCHEMA: &str = r#"The JSON object has this shape (only "plan", "plan.steps", "stepQueue" and each step's "instruction" are required; leave out what you do not need):
{
  "plan": {
    "steps": { "<step id>": <step>, ... },
    "context": "none" | "previous" | "all",  the default "context" of every step
    "contextMaxChars": <integer>,            most characters earlier results add to one step's prompt (default 20000)
    "compressAgent": "<agent name>",         summarises results too long to fit, instead of cutting them
    "maxParallel": <integer 1..64>           how many steps may run at the same time (default 1)
  },
  "stepQueue": ["<step id>", ...],           the order the steps run in; each id once, each defined in plan.steps
  "stepDelayMinutes": <number>               minutes to wait between steps (default 0)
}
A step (short ids such as "research" or "step-1"):
  "title": "<text>"                 a short name for people
  "instruction": "<text>"           what the agent is told to do
  "requiredOutputs": ["<path>"]     files that must exist when the step ends, or the try failed
  "maxRetries": <integer >= 1>      tries in all before a person is called (default 3)
  "timeoutSeconds": <integer >= 1>  the time limit of one try
  "resultFile": "<path>"            a file whose content is the step's result (default: what its agent prints)
  "context": "none" | "previous" | "all"   earlier steps' results added after the instruction
  "verify": {                       checks of the result; a failed check fails the try, which is retried
    "files": ["<path>"],            files that must exist and not be empty
    "contains": "<text>",           text the result must contain
    "matches": "<regex>",           a regular expression the result must match
    "json": true,                   the result must be JSON
    "minChars": <integer>,          the fewest characters the result may have
    "agent": "<agent name>",        an agent that judges the result
    "instruction": "<text>"         what that agent is to check
  }
  "agent": "<agent name>"           the agent that runs the step
  "fallbackAgents": ["<agent name>"]   agents for the later tries, in order
  "needs": ["<step id>"]            the steps it waits for (default: the step before it); [] for none, so steps can run side by side
  "when": {"step": "<id>", "status": "DONE" | "FAILED" | "SKIPPED", "resultContains": "<text>", "resultMatches": "<regex>"}   run only if this holds, else skipped
  "optional": true                  out of tries, it fails without stopping the plan
  "forEach": {"from": "steps.<id>.result" | "file:<path>", "split": "lines" | "json", "maxItems": <integer>}   run once per item, {{item}} and {{index}} in the instruction
  "repeat": {"max": <integer>, "until": <a verify object>}   run again, with its previous result, until the check passes
An instruction may contain {{steps.<id>.result}}: it is replaced by the result of step <id>, which must be one the step waits for (in a plain list, an earlier one).
Paths are relative to the workspace, without "..".
"#;

/// The most characters of a rejected reply sent back with its problems.
pub const REPLY_SHOWN_CHARS: usize = 8_000;

/// What was wrong with the previous reply, for the next try's prompt.
#[derive(Debug, Clone, Copy)]
pub struct Feedback<'a> {
    /// Each problem, as `field: problem` (the validator's words).
    pub problems: &'a [String],
    /// The reply as the agent gave it.
    pub reply: &'a str,
}

/// The prompt that asks for a plan for `task`. The steps will run in `workspace`; `agents` are
/// the names of the operator's agents a plan may name (none: only the default one).
/// `feedback` is the previous reply's problems, when this is a retry.
#[must_use]
pub fn request(
    task: &str,
    workspace: &str,
    agents: &[&str],
    feedback: Option<&Feedback>,
) -> String {
    let mut prompt = format!(
        "Make a plan for the task below; do not carry the task out or start it. The plan is a \
         list of steps that a step runner will run one after another. Each step's instruction \
         is sent as a fresh message to an agent working in the folder {workspace}, without \
         this conversation: write every instruction so that it stands alone, and name the \
         files it reads and writes (relative to that folder). Give a step the output of an \
         earlier one with a reference or a context, and check the work that matters with \
         requiredOutputs or verify.\n\n\
         The task:\n{task}\n\n\
         Reply with the plan as one JSON object and nothing else: no text before or after it.\n\n"
    );
    prompt.push_str(SCHEMA);
    prompt.push_str("\nAgents: ");
    if agents.is_empty() {
        prompt.push_str(
            "there are no named agents, so leave out \"agent\", \"fallbackAgents\", \
             \"verify.agent\" and \"compressAgent\".",
        );
    } else {
        let _ = write!(
            prompt,
            "the named agents are {}, and \"default\" is the usual one. Name no other.",
            agents
                .iter()
                .map(|a| format!("\"{a}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    prompt.push_str(
        "\n\nAn example, for the task \"Summarise the research on topic X, then check the \
         summary\":\n",
    );
    prompt.push_str(EXAMPLE);
    if let Some(feedback) = feedback {
        prompt.push_str(
            "\n\nYour previous reply was not a valid plan. Its problems (every one must be \
             fixed):\n",
        );
        for problem in feedback.problems {
            let _ = writeln!(prompt, "- {problem}");
        }
        prompt.push_str(
            "Reply again with the whole corrected plan as one JSON object and nothing else.\n\n\
             Your previous reply was:\n",
        );
        prompt.push_str(&cut(feedback.reply, REPLY_SHOWN_CHARS));
    }
    // A reply may carry a NUL; the prompt becomes a program argument, which cannot.
    without_nul(&prompt).into_owned()
}

/// The JSON text in a planner's reply: the first Markdown fenced block that holds an object
/// (agents wrap JSON in one however they are asked), else the text from the first `{` to the
/// last `}` (prose around a bare object); `None` if there is no `{` at all.
#[must_use]
pub fn extract(reply: &str) -> Option<&str> {
    if let Some(block) = fenced_blocks(reply)
        .into_iter()
        .find(|block| block.trim_start().starts_with('{'))
    {
        return Some(block.trim());
    }
    let start = reply.find('{')?;
    // An object cut off before its `}` is still given to the parser, whose message (where the
    // text ended) helps the next try more than "no JSON".
    Some(match reply.rfind('}').filter(|&end| end > start) {
        Some(end) => &reply[start..=end],
        None => &reply[start..],
    })
}

/// The contents of the fenced blocks (```` ``` ```` or ```` ```json ````, up to a line that
/// starts with ```` ``` ````), in order; a block left open runs to the end of the text.
fn fenced_blocks(text: &str) -> Vec<&str> {
    let mut blocks = Vec::new();
    let mut open = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with("```") {
            match open.take() {
                None => open = Some(offset + line.len()),
                Some(start) => blocks.push(&text[start..offset]),
            }
        }
        offset += line.len();
    }
    if let Some(start) = open {
        blocks.push(&text[start..]);
    }
    blocks
}

/// The plan in a few lines for a person to confirm: how many steps and the delay, then each
/// step numbered with its title (or the start of its instruction) and id.
#[must_use]
pub fn summary(state: &State) -> String {
    let count = state.step_queue.len();
    let mut out = format!(
        "{count} step{}, {} min between steps:",
        if count == 1 { "" } else { "s" },
        state.delay_minutes()
    );
    for (n, id) in state.step_queue.iter().enumerate() {
        let step = state.plan.steps.get(id);
        let title = step
            .and_then(|s| s.title.as_deref())
            .filter(|t| !t.trim().is_empty())
            .map_or_else(
                || {
                    let instruction = step.map_or("", |s| s.instruction());
                    let line = instruction.lines().next().unwrap_or_default();
                    shorten(line, 72)
                },
                str::to_owned,
            );
        let _ = write!(
            out,
            "\n  {}. {} ({})",
            n + 1,
            printable(title.trim()),
            printable(id)
        );
    }
    out
}

/// `text` in at most `chars` characters, with `…` where it was cut.
fn shorten(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(chars.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// `text` cut to about `room` characters: its head and tail around a line saying how much went.
fn cut(text: &str, room: usize) -> String {
    let len = text.chars().count();
    if len <= room {
        return text.to_owned();
    }
    let head = room / 2;
    let tail = room - head;
    let start: String = text.chars().take(head).collect();
    let end: String = text.chars().skip(len - tail).collect();
    format!("{start}\n[… {} characters cut …]\n{end}", len - room)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::validate;

    #[test]
    fn the_example_is_a_valid_plan_that_uses_a_reference_and_verify() {
        let state = validate::parse(EXAMPLE.as_bytes()).unwrap();
        assert_eq!(state.step_queue, ["find", "notes", "review"]);
        assert!(EXAMPLE.contains("{{steps.find.result}}"));
        assert!(state.plan.steps["find"].verify.is_some());
    }

    #[test]
    fn the_request_carries_the_task_the_schema_the_example_and_says_json_only() {
        let prompt = request("Write a paper on X", "/w", &[], None);
        assert!(
            prompt.contains("The task:\nWrite a paper on X\n"),
            "{prompt}"
        );
        assert!(
            prompt.contains("agent working in the folder /w"),
            "{prompt}"
        );
        assert!(
            prompt.contains("one JSON object and nothing else"),
            "{prompt}"
        );
        for field in [
            "\"title\"",
            "\"instruction\"",
            "\"requiredOutputs\"",
            "\"maxRetries\"",
            "\"timeoutSeconds\"",
            "\"resultFile\"",
            "\"context\"",
            "\"verify\"",
            "\"files\"",
            "\"contains\"",
            "\"matches\"",
            "\"json\"",
            "\"minChars\"",
            "\"agent\"",
            "\"fallbackAgents\"",
            "\"contextMaxChars\"",
            "\"compressAgent\"",
            "\"stepQueue\"",
            "\"stepDelayMinutes\"",
            "{{steps.<id>.result}}",
        ] {
            assert!(prompt.contains(field), "the prompt lacks {field}");
        }
        assert!(prompt.contains(EXAMPLE));
        assert!(prompt.contains("there are no named agents"), "{prompt}");
        assert!(!prompt.contains("previous reply"), "{prompt}");
    }

    #[test]
    fn the_request_names_the_operators_agents_when_there_are_some() {
        let prompt = request("t", "/w", &["researcher", "reviewer"], None);
        assert!(
            prompt.contains(
                "the named agents are \"researcher\", \"reviewer\", and \"default\" is the usual one"
            ),
            "{prompt}"
        );
        assert!(!prompt.contains("there are no named agents"));
    }

    #[test]
    fn a_retry_sends_every_problem_and_the_previous_reply_cut_if_long() {
        let problems = [
            "plan.steps.a.instruction: missing or empty".to_owned(),
            "stepQueue[1]: step `c` is not defined in plan.steps".to_owned(),
        ];
        let long = format!("{{{}}}", "x".repeat(REPLY_SHOWN_CHARS * 2));
        let prompt = request(
            "t",
            "/w",
            &[],
            Some(&Feedback {
                problems: &problems,
                reply: &long,
            }),
        );
        assert!(prompt.contains("Your previous reply was not a valid plan"));
        for problem in &problems {
            assert!(prompt.contains(&format!("- {problem}\n")), "{prompt}");
        }
        let shown = prompt.split("Your previous reply was:\n").nth(1).unwrap();
        assert!(shown.starts_with("{xxx"), "{shown}");
        assert!(shown.ends_with("xxx}"), "{shown}");
        assert!(shown.contains(&format!("[… {} characters cut …]", REPLY_SHOWN_CHARS + 2)));
        assert!(shown.chars().count() < REPLY_SHOWN_CHARS + 100);
        let short = request(
            "t",
            "/w",
            &[],
            Some(&Feedback {
                problems: &problems,
                reply: "{\"a\":\0}",
            }),
        );
        assert!(
            short.ends_with("{\"a\":\u{FFFD}}"),
            "a NUL cannot be an argument"
        );
    }

    #[test]
    fn a_reply_is_read_with_or_without_a_fence_and_prose_around_it() {
        let plan = "{\"plan\": {\"steps\": {}}}";
        for (reply, want) in [
            (plan.to_owned(), Some(plan)),
            (format!("```json\n{plan}\n```"), Some(plan)),
            (format!("```\n{plan}\n```\n"), Some(plan)),
            (
                format!("Here it is:\n\n```JSON\n{plan}\n```\nEnjoy."),
                Some(plan),
            ),
            (format!("Sure! {plan} Anything else?"), Some(plan)),
            // A block that is not JSON (a shell line) is passed over for the one that is.
            (
                format!("Run:\n```sh\nseqctl init\n```\nPlan:\n```json\n{plan}\n```"),
                Some(plan),
            ),
            // A reply cut off inside its fence still gives what it has.
            (format!("```json\n{plan}\n"), Some(plan)),
            ("I cannot plan this.".to_owned(), None),
            ("} cut off: {\"plan\": ".to_owned(), Some("{\"plan\": ")),
        ] {
            assert_eq!(extract(&reply), want, "{reply:?}");
        }
        // Two fenced objects: the first is the plan.
        assert_eq!(
            extract("```\n{\"a\":1}\n```\n```\n{\"b\":2}\n```"),
            Some("{\"a\":1}")
        );
    }

    #[test]
    fn the_summary_numbers_the_steps_with_their_titles() {
        let state = validate::parse(
            br#"{"plan":{"steps":{
                "a":{"title":"Research","instruction":"find X"},
                "b":{"instruction":"write the paper\nin two pages"},
                "c":{"title":"Evil\u001b[2J","instruction":"x"}}},
              "stepQueue":["a","b","c"],"stepDelayMinutes":2}"#,
        )
        .unwrap();
        assert_eq!(
            summary(&state),
            "3 steps, 2 min between steps:\n  1. Research (a)\n  2. write the paper (b)\n  \
             3. Evil\\u{1b}[2J (c)"
        );
        assert_eq!(shorten("abcdef", 4), "abc…");
    }
}
