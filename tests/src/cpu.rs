//! CPU time of processes, read from `/proc`, for the benchmarks that compare what each side of a
//! copy costs: the copier (a child of the benchmark), and a server with all its worker
//! processes (a Dovecot master and its children).
//!
//! Times come from `/proc/<pid>/stat` (utime, stime and, for children that exited and were
//! reaped, cutime and cstime), in clock ticks of 10 ms.

use std::time::Duration;

/// Clock ticks per second of `/proc/<pid>/stat` (`USER_HZ`, 100 on every Linux architecture
/// Debian ships).
const TICKS_PER_SECOND: u64 = 100;

/// The fields of `/proc/<pid>/stat` the measurements need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    ppid: u32,
    /// utime + stime of the process itself.
    own: u64,
    /// cutime + cstime: its children that exited and were waited for.
    reaped: u64,
}

/// Parses one `/proc/<pid>/stat` line. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from its closing parenthesis.
fn parse_stat(line: &str) -> Option<Stat> {
    let rest = &line[line.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `fields[0]` is field 3 (state): field n is `fields[n - 3]`.
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        ppid: u32::try_from(field(4)?).ok()?,
        own: field(14)? + field(15)?,
        reaped: field(16)? + field(17)?,
    })
}

fn stat_of(pid: u32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn ticks(t: u64) -> Duration {
    Duration::from_millis(t * 1000 / TICKS_PER_SECOND)
}

/// CPU time of the children of this process that exited and were waited for (a `Command` run
/// to completion): the difference around one run is what that run cost.
pub fn reaped_children() -> Duration {
    ticks(stat_of(std::process::id()).map_or(0, |s| s.reaped))
}

/// CPU time of this process itself.
pub fn own() -> Duration {
    ticks(stat_of(std::process::id()).map_or(0, |s| s.own))
}

/// CPU time of the process `pid` and every process under it: its own, that of its reaped
/// children, and that of its descendants still running. Dovecot's master reaps the `imap`
/// process of each finished session, so the difference around a run is what the server spent
/// on it, logins and TLS (in `imap-login`) included.
pub fn tree(pid: u32) -> Duration {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Duration::ZERO;
    };
    let stats: Vec<(u32, Stat)> = entries
        .filter_map(|e| {
            let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            Some((pid, stat_of(pid)?))
        })
        .collect();
    ticks(tree_ticks(pid, &stats))
}

/// The ticks of `root` and its descendants among `stats`: own + reaped of each.
fn tree_ticks(root: u32, stats: &[(u32, Stat)]) -> u64 {
    let mut total = 0;
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        for (child, stat) in stats {
            if *child == pid {
                total += stat.own + stat.reaped;
            } else if stat.ppid == pid {
                stack.push(*child);
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_is_read_past_a_command_name_with_spaces_and_parentheses() {
        let line = "4242 (imap (user) x) S 17 4242 17 0 -1 4194560 700 0 0 0 \
                    250 31 9 4 20 0 1 0 1234 0 0";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                ppid: 17,
                own: 281,
                reaped: 13
            })
        );
        assert_eq!(parse_stat("4242 (cut off"), None);
    }

    #[test]
    fn a_tree_sums_the_root_and_all_its_descendants_only() {
        let stat = |ppid, own, reaped| Stat { ppid, own, reaped };
        let stats = [
            (10, stat(1, 5, 100)),
            (11, stat(10, 7, 0)),
            (12, stat(11, 3, 1)),
            (13, stat(1, 1000, 1000)),
        ];
        assert_eq!(tree_ticks(10, &stats), 5 + 100 + 7 + 3 + 1);
        assert_eq!(tree_ticks(12, &stats), 4);
    }

    #[test]
    fn this_process_is_measured() {
        // Spin until the clock ticks at least once.
        let before = own();
        let start = std::time::Instant::now();
        while own() == before && start.elapsed() < Duration::from_secs(5) {
            std::hint::black_box((0..10_000u64).sum::<u64>());
        }
        assert!(own() > before);
        assert!(tree(std::process::id()) >= own());
    }
}
