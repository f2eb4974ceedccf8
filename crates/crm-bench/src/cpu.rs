//! CPU time by thread group, read from `/proc`, so a benchmark can say where the cycles of a
//! phase went (this process's threads by name, and the nats-server process), not just how long
//! it took. Linux only; elsewhere every figure reads as zero.

use std::collections::BTreeMap;

/// CPU time in microseconds per group at one moment.
#[derive(Debug, Clone, Default)]
pub struct CpuSnapshot(BTreeMap<&'static str, u64>);

/// The groups reported, in table order.
pub const GROUPS: [&str; 5] = [
    "tokio workers",
    "log writer",
    "sled io",
    "other threads",
    "nats-server",
];

impl CpuSnapshot {
    /// Reads this process's threads and, when given, the nats-server process.
    pub fn take(nats_server_pid: Option<u32>) -> CpuSnapshot {
        let mut groups = BTreeMap::new();
        if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
            for task in tasks.flatten() {
                let Some((comm, micros)) = read_stat(&task.path().join("stat")) else {
                    continue;
                };
                *groups.entry(group_of(&comm)).or_insert(0) += micros;
            }
        }
        if let Some(pid) = nats_server_pid {
            if let Some((_, micros)) = read_stat(format!("/proc/{pid}/stat").as_ref()) {
                groups.insert("nats-server", micros);
            }
        }
        CpuSnapshot(groups)
    }

    /// CPU microseconds per unit of work between `self` (earlier) and `later`, by group.
    pub fn per_unit(&self, later: &CpuSnapshot, units: usize) -> Vec<(&'static str, f64)> {
        GROUPS
            .iter()
            .map(|group| {
                let before = self.0.get(group).copied().unwrap_or(0);
                let after = later.0.get(group).copied().unwrap_or(0);
                (
                    *group,
                    after.saturating_sub(before) as f64 / units.max(1) as f64,
                )
            })
            .collect()
    }

    /// CPU microseconds per unit of work between `self` and `later`, all groups together.
    pub fn total_per_unit(&self, later: &CpuSnapshot, units: usize) -> f64 {
        total(&self.per_unit(later, units))
    }
}

/// User + system CPU microseconds of process `pid` so far, all its threads together.
pub fn process_cpu_us(pid: u32) -> Option<u64> {
    read_stat(format!("/proc/{pid}/stat").as_ref()).map(|(_, micros)| micros)
}

/// CPU time of groups of processes, and of the whole machine, at one moment: what each group
/// spent on a measurement's work, and what every other process took meanwhile (a busy machine
/// shows there, not only in slower figures).
#[derive(Debug, Clone)]
pub struct ProcessCpu {
    /// User + system microseconds of each group, all its processes together.
    groups: Vec<u64>,
    /// User + nice + system microseconds of all cores (interrupts left out: they belong to
    /// no process).
    machine: u64,
    at: std::time::Instant,
}

impl ProcessCpu {
    /// Reads each group of processes (by pid) and the machine; fails if a process is gone.
    pub fn take(groups: &[&[u32]]) -> anyhow::Result<ProcessCpu> {
        use anyhow::Context as _;
        let groups = groups
            .iter()
            .map(|pids| {
                pids.iter()
                    .map(|&pid| {
                        process_cpu_us(pid).with_context(|| format!("reading /proc/{pid}/stat"))
                    })
                    .sum::<anyhow::Result<u64>>()
            })
            .collect::<anyhow::Result<Vec<u64>>>()?;
        Ok(ProcessCpu {
            groups,
            machine: machine_busy_us().context("reading /proc/stat")?,
            at: std::time::Instant::now(),
        })
    }

    /// CPU microseconds per unit of work of each group between `self` (earlier) and `later`.
    pub fn per_unit(&self, later: &ProcessCpu, units: usize) -> Vec<f64> {
        self.groups
            .iter()
            .zip(&later.groups)
            .map(|(before, after)| after.saturating_sub(*before) as f64 / units.max(1) as f64)
            .collect()
    }

    /// Cores the machine spent between `self` and `later` on anything but the groups.
    pub fn others_cores(&self, later: &ProcessCpu) -> f64 {
        let ours: u64 = self
            .groups
            .iter()
            .zip(&later.groups)
            .map(|(before, after)| after.saturating_sub(*before))
            .sum();
        let machine = later.machine.saturating_sub(self.machine);
        let elapsed_us = later.at.duration_since(self.at).as_micros().max(1) as f64;
        machine.saturating_sub(ours) as f64 / elapsed_us
    }
}

/// User + nice + system CPU microseconds of all cores so far, from the `cpu` line of
/// `/proc/stat`.
fn machine_busy_us() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|line| line.starts_with("cpu "))?;
    let mut fields = line.split_whitespace().skip(1);
    let mut next = || fields.next()?.parse::<u64>().ok();
    let (user, nice, system) = (next()?, next()?, next()?);
    Some((user + nice + system) * 1_000_000 / CLOCK_TICKS_PER_SECOND)
}

/// The sum of a row of [`CpuSnapshot::per_unit`].
pub fn total(groups: &[(&'static str, f64)]) -> f64 {
    groups.iter().map(|(_, us)| us).sum()
}

fn group_of(comm: &str) -> &'static str {
    if comm.starts_with("tokio-rt-worker") {
        "tokio workers"
    } else if comm.starts_with("crm-eventlog") {
        "log writer"
    } else if comm.starts_with("sled") {
        "sled io"
    } else {
        "other threads"
    }
}

/// Name and user + system CPU time (microseconds) from a `/proc/.../stat` file.
fn read_stat(path: &std::path::Path) -> Option<(String, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    // The name is in parentheses and may itself hold spaces or parentheses.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = text.get(close + 2..)?.split_whitespace().collect();
    // After the name: state is field 3 of stat(5), utime 14 and stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((comm, (utime + stime) * 1_000_000 / CLOCK_TICKS_PER_SECOND))
}

/// `sysconf(_SC_CLK_TCK)`, 100 on every Linux this runs on (the kernel ABI fixes USER_HZ).
const CLOCK_TICKS_PER_SECOND: u64 = 100;
