//! The plan as a graph: each queued step waits for the steps its `needs` names, or, without
//! `needs`, for the step before it in `stepQueue` (the Python version's order, so a plain list
//! is a chain). Pure: positions in `stepQueue` in, dependencies and cycles out.

/// The dependencies of each queued step, by position in `stepQueue`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Graph {
    /// Each step's own list; empty for a chain, whose lists are slices of `positions`.
    deps: Vec<Vec<usize>>,
    /// `0..len`: a chain's step `i` waits for `positions[i - 1..i]` (no list per step).
    positions: Vec<usize>,
    /// No step has `needs`: the graph is the queue's chain.
    chain: bool,
}

impl Graph {
    /// The graph of a queue of `len` steps; `needs(i)` gives step `i`'s `needs` as positions
    /// (names that are not queued were left out by the caller, who reports them).
    pub fn new(len: usize, mut needs: impl FnMut(usize) -> Option<Vec<usize>>) -> Self {
        let listed: Vec<Option<Vec<usize>>> = (0..len).map(&mut needs).collect();
        let positions = (0..len).collect();
        if listed.iter().all(Option::is_none) {
            // A plain list (every plan before `needs`): no list per step on every heartbeat.
            return Self {
                deps: Vec::new(),
                positions,
                chain: true,
            };
        }
        let deps = listed
            .into_iter()
            .enumerate()
            .map(|(i, needs)| match needs {
                Some(mut listed) => {
                    listed.sort_unstable();
                    listed.dedup();
                    listed
                }
                None => i.checked_sub(1).into_iter().collect(),
            })
            .collect();
        Self {
            deps,
            positions,
            chain: false,
        }
    }

    /// The steps step `i` waits for.
    #[must_use]
    pub fn deps(&self, i: usize) -> &[usize] {
        if self.chain {
            return match i {
                0 => &[],
                i => self.positions.get(i - 1..i).unwrap_or(&[]),
            };
        }
        self.deps.get(i).map_or(&[], Vec::as_slice)
    }

    /// Whether the plan is a plain chain (no step has `needs`).
    #[must_use]
    pub fn is_chain(&self) -> bool {
        self.chain
    }

    /// A cycle of dependencies, if there is one, as positions in order (the first repeated
    /// at the end).
    #[must_use]
    pub fn cycle(&self) -> Option<Vec<usize>> {
        if self.chain {
            return None;
        }
        // Iterative depth-first search: 0 unseen, 1 on the path, 2 done.
        let mut mark = vec![0u8; self.positions.len()];
        for start in 0..self.positions.len() {
            if mark[start] != 0 {
                continue;
            }
            let mut path: Vec<(usize, usize)> = vec![(start, 0)];
            mark[start] = 1;
            while let Some(&mut (node, ref mut next)) = path.last_mut() {
                if let Some(&dep) = self.deps(node).get(*next) {
                    *next += 1;
                    match mark[dep] {
                        0 => {
                            mark[dep] = 1;
                            path.push((dep, 0));
                        }
                        1 => {
                            let from = path.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                            let mut cycle: Vec<usize> =
                                path[from..].iter().map(|(n, _)| *n).collect();
                            cycle.push(dep);
                            return Some(cycle);
                        }
                        _ => {}
                    }
                } else {
                    mark[node] = 2;
                    path.pop();
                }
            }
        }
        None
    }

    /// Every step step `i` waits for, directly or not, in queue order. A chain's are the
    /// steps before it.
    #[must_use]
    pub fn ancestors(&self, i: usize) -> Vec<usize> {
        if self.chain {
            return (0..i.min(self.positions.len())).collect();
        }
        let mut seen = vec![false; self.positions.len()];
        let mut stack: Vec<usize> = self.deps(i).to_vec();
        while let Some(node) = stack.pop() {
            if node < seen.len() && !seen[node] {
                seen[node] = true;
                stack.extend_from_slice(self.deps(node));
            }
        }
        seen.iter()
            .enumerate()
            .filter(|(n, s)| **s && *n != i)
            .map(|(n, _)| n)
            .collect()
    }

    /// Whether step `a` is among the steps step `b` waits for, directly or not.
    #[must_use]
    pub fn runs_before(&self, a: usize, b: usize) -> bool {
        if self.chain {
            return a < b;
        }
        self.ancestors(b).binary_search(&a).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_without_needs_is_the_queues_chain() {
        let g = Graph::new(3, |_| None);
        assert!(g.is_chain());
        assert_eq!(g.deps(0), [] as [usize; 0]);
        assert_eq!(g.deps(2), [1]);
        assert_eq!(g.ancestors(2), [0, 1]);
        assert!(g.runs_before(0, 2) && !g.runs_before(2, 0));
        assert_eq!(g.cycle(), None);
    }

    #[test]
    fn needs_replace_the_previous_step_and_cycles_are_found() {
        // 0 and 1 need nothing, 2 needs both, 3 (no needs) waits for 2.
        let needs = [Some(vec![]), Some(vec![]), Some(vec![1, 0, 1]), None];
        let g = Graph::new(4, |i| needs[i].clone());
        assert_eq!(g.deps(2), [0, 1]);
        assert_eq!(g.deps(3), [2]);
        assert_eq!(g.ancestors(3), [0, 1, 2]);
        assert!(!g.runs_before(0, 1));
        assert_eq!(g.cycle(), None);
        let needs = [Some(vec![2]), None, None];
        let g = Graph::new(3, |i| needs[i].clone());
        assert_eq!(g.cycle(), Some(vec![0, 2, 1, 0]));
        let g = Graph::new(2, |i| Some(vec![i]));
        assert_eq!(g.cycle(), Some(vec![0, 0]));
    }
}
