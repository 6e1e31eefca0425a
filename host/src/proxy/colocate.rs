//! Co-location: Tollgate and the MCP server it started share one CPU, so the two hand-offs a
//! call adds (Tollgate -> server, server -> Tollgate) wake a process on the CPU that is already
//! running, instead of waking another, idle CPU. On a small VM a wake-up of an idle vCPU costs
//! 10-12 µs (measured with `perf sched`, BENCHMARKS.md) and dominated what Tollgate added to a
//! call; co-located, the stdio bench's 3-rule chain adds 14–25 µs at p50 instead of 54–59
//! (memory counters), 35–41 instead of 72–83 (sqlite).
//!
//! The price is that the server's own threads share that CPU too. A request/response server
//! alternates with Tollgate and loses nothing, but a server that works in parallel (one that
//! drives a browser, runs a search over many files) would be held to one CPU, and so would many
//! servers of many HTTP sessions. So in `auto` mode Tollgate watches the CPU time of itself and
//! every process below it, once a second, and when together they kept the shared CPU over 90%
//! busy for three seconds in a row it gives every thread of the tree, and its own, back the
//! CPUs they were allowed before, for good. Three seconds, so that a server's start (`npx`
//! resolving its package, Python importing its modules) does not count as a server at work.
//! Threads whose affinity someone else changed meanwhile are left alone.
//!
//! Linux only; elsewhere, and when only one CPU is allowed anyway, nothing is pinned.

use std::time::Duration;

/// Whether Tollgate and its child share a CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Share one CPU until the pair keeps it busy, then spread out (the default).
    #[default]
    Auto,
    /// Share one CPU for the whole run.
    On,
    /// Leave placement to the scheduler.
    Off,
}

/// How often `auto` mode looks at the CPU time used.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// Share of the shared CPU that counts as kept busy.
const BUSY_SHARE: f64 = 0.9;
/// Busy samples in a row before spreading out.
const BUSY_SAMPLES: u32 = 3;

/// A pinning in force: the CPU shared, and what every thread was allowed before.
pub struct Colocation {
    mode: Mode,
    cpu: usize,
    #[cfg(target_os = "linux")]
    wide: sys::CpuSet,
}

impl Colocation {
    /// Pin every thread of this process to the CPU it is running on, before the child is
    /// spawned (the child inherits the pinning). `None` when there is nothing to do: mode
    /// `off`, a single allowed CPU, another OS, or a failed system call (logged: co-location is
    /// an optimisation, never a reason not to run).
    pub fn start(mode: Mode) -> Option<Self> {
        if mode == Mode::Off {
            return None;
        }
        #[cfg(target_os = "linux")]
        {
            let wide = match sys::CpuSet::of(0) {
                Ok(set) => set,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot read the CPU affinity; not co-locating");
                    return None;
                }
            };
            if wide.count() < 2 {
                return None;
            }
            // Without the kernel's list of child processes, `auto` could not find the servers
            // to give their CPUs back to: better not to pin them at all.
            if mode == Mode::Auto && !sys::lists_children() {
                tracing::debug!("no /proc/thread-self/children; not co-locating");
                return None;
            }
            let cpu = sys::current_cpu().filter(|c| wide.has(*c))?;
            let narrow = sys::CpuSet::only(cpu);
            if let Err(e) = sys::set_process(std::process::id(), &wide, &narrow) {
                tracing::debug!(error = %e, "cannot pin to one CPU; not co-locating");
                return None;
            }
            tracing::debug!(cpu, ?mode, "sharing one CPU with the MCP server");
            Some(Self { mode, cpu, wide })
        }
        #[cfg(not(target_os = "linux"))]
        {
            None
        }
    }

    /// In `auto` mode, watch this process and every process below it (the servers it started
    /// and theirs), and spread them all out again once together they keep the shared CPU busy.
    /// Returns at once in `on` mode; otherwise runs until it has spread out (or for as long as
    /// the proxy runs, if it never has to).
    pub async fn watch(self) {
        if self.mode != Mode::Auto {
            return;
        }
        #[cfg(target_os = "linux")]
        {
            let me = std::process::id();
            let narrow = sys::CpuSet::only(self.cpu);
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            let mut last = sys::cpu_seconds(me);
            let mut busy = 0;
            loop {
                tick.tick().await;
                let now = sys::cpu_seconds(me);
                let used = (now - last) / SAMPLE_EVERY.as_secs_f64();
                last = now;
                busy = if used > BUSY_SHARE { busy + 1 } else { 0 };
                if busy < BUSY_SAMPLES {
                    continue;
                }
                tracing::info!(
                    cpu = self.cpu,
                    busy = format!("{:.0}%", used * 100.0),
                    "Tollgate and the MCP server keep their shared CPU busy; spreading them over every allowed CPU"
                );
                // Twice: a process forked by a pinned parent while the tree was being walked
                // is caught the second time.
                for _ in 0..2 {
                    for pid in sys::tree(me) {
                        let _ = sys::set_process(pid, &narrow, &self.wide);
                    }
                    tick.tick().await;
                }
                return;
            }
        }
    }
}

#[cfg(target_os = "linux")]
mod sys {
    //! The Linux calls behind co-location: affinity masks, the current CPU, `/proc`.

    use std::io;

    /// A CPU mask.
    #[derive(Clone, Copy)]
    pub struct CpuSet(libc::cpu_set_t);

    impl CpuSet {
        /// What thread `tid` (0: the caller) may run on.
        pub fn of(tid: libc::pid_t) -> io::Result<Self> {
            // SAFETY: an all-zero cpu_set_t is a valid empty set, filled in by the kernel.
            let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
            // SAFETY: the size passed is the size of the set we own.
            let rc = unsafe { libc::sched_getaffinity(tid, std::mem::size_of_val(&set), &mut set) };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Self(set))
        }

        /// Just `cpu`.
        pub fn only(cpu: usize) -> Self {
            // SAFETY: as in `of`; CPU_SET bounds-checks against the set's size.
            let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
            unsafe { libc::CPU_SET(cpu, &mut set) };
            Self(set)
        }

        /// How many CPUs are in the set.
        pub fn count(&self) -> usize {
            // SAFETY: reads the set we own.
            (unsafe { libc::CPU_COUNT(&self.0) }) as usize
        }

        /// Whether `cpu` is in the set.
        pub fn has(&self, cpu: usize) -> bool {
            // SAFETY: reads the set we own; CPU_ISSET bounds-checks.
            unsafe { libc::CPU_ISSET(cpu, &self.0) }
        }

        fn same(&self, other: &Self) -> bool {
            // SAFETY: both sets are fully initialised plain data.
            unsafe { libc::CPU_EQUAL(&self.0, &other.0) }
        }

        fn apply(&self, tid: libc::pid_t) -> io::Result<()> {
            // SAFETY: the size passed is the size of the set we own.
            let rc =
                unsafe { libc::sched_setaffinity(tid, std::mem::size_of_val(&self.0), &self.0) };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }
    }

    /// Whether the kernel lists each thread's child processes (`CONFIG_PROC_CHILDREN`).
    pub fn lists_children() -> bool {
        std::fs::metadata("/proc/thread-self/children").is_ok()
    }

    /// The CPU the calling thread runs on.
    pub fn current_cpu() -> Option<usize> {
        // SAFETY: no arguments; returns -1 on failure.
        let cpu = unsafe { libc::sched_getcpu() };
        usize::try_from(cpu).ok()
    }

    fn threads(pid: u32) -> Vec<libc::pid_t> {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect()
    }

    /// Move every thread of `pid` whose mask is `from` to `to`; threads with any other mask
    /// (someone chose it on purpose) are left alone. Fails only if no thread could be moved.
    pub fn set_process(pid: u32, from: &CpuSet, to: &CpuSet) -> io::Result<()> {
        let mut last_error = None;
        let mut moved = false;
        for tid in threads(pid) {
            match CpuSet::of(tid) {
                Ok(current) if current.same(from) => match to.apply(tid) {
                    Ok(()) => moved = true,
                    Err(e) => last_error = Some(e),
                },
                Ok(_) => {}
                Err(e) => last_error = Some(e),
            }
        }
        match last_error {
            Some(e) if !moved => Err(e),
            _ => Ok(()),
        }
    }

    /// `root` and every process below it.
    pub fn tree(root: u32) -> Vec<u32> {
        let mut all = vec![root];
        let mut i = 0;
        while i < all.len() {
            let pid = all[i];
            for tid in threads(pid) {
                if let Ok(children) =
                    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/children"))
                {
                    all.extend(
                        children
                            .split_whitespace()
                            .filter_map(|c| c.parse::<u32>().ok()),
                    );
                }
            }
            i += 1;
        }
        all
    }

    /// CPU seconds used so far by `root` and every process below it: their own time, and that
    /// of the children they have reaped (so a helper process that ran and exited between two
    /// samples still counts).
    pub fn cpu_seconds(root: u32) -> f64 {
        // SAFETY: sysconf has no preconditions.
        let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let ticks: u64 = tree(root)
            .into_iter()
            .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
            .map(|stat| {
                // Fields after the command name (which may hold spaces and parentheses): state
                // is the 3rd field; utime, stime, cutime and cstime the 14th to the 17th.
                let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
                rest.split_whitespace()
                    .skip(11)
                    .take(4)
                    .filter_map(|f| f.parse::<u64>().ok())
                    .sum::<u64>()
            })
            .sum();
        ticks as f64 / ticks_per_second
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::sys;

    #[test]
    fn the_process_tree_starts_at_its_root_and_finds_a_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let tree = sys::tree(std::process::id());
        assert_eq!(tree[0], std::process::id());
        assert!(tree.contains(&child.id()), "{tree:?} lacks {}", child.id());
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn cpu_seconds_grow_when_this_process_works() {
        let me = std::process::id();
        let before = sys::cpu_seconds(me);
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < std::time::Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        assert!(sys::cpu_seconds(me) > before + 0.1);
    }

    #[test]
    fn a_child_that_worked_and_exited_still_counts() {
        // The outer shell does nothing itself: all the CPU time is its child's, which has
        // exited and been reaped by the time it is measured.
        let mut outer = std::process::Command::new("sh")
            .args([
                "-c",
                "sh -c 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done'; sleep 10",
            ])
            .spawn()
            .unwrap();
        let pid = outer.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        // Wait until the worker is gone and `sleep` runs instead.
        while !std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .map(|c| {
                c.split_whitespace().any(|child| {
                    std::fs::read_to_string(format!("/proc/{child}/comm"))
                        .is_ok_and(|comm| comm.trim() == "sleep")
                })
            })
            .unwrap_or(false)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the worker never finished"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let seconds = sys::cpu_seconds(pid);
        outer.kill().unwrap();
        outer.wait().unwrap();
        assert!(seconds > 0.05, "only {seconds} s counted");
    }
}
