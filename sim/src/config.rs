//! What one simulation runs: the seed, the cluster's shape, the fault kinds allowed, the workload's
//! length and the defects switched on. Everything else a run does follows from these.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use arca_node::inject::Defect;

/// Sites and nodes: `3x3` is three sites of three full nodes; `3x2+1` adds one cache node per site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Topology {
    /// Sites (latency and failure domains).
    pub sites: usize,
    /// Full nodes (voters or learners holding every replicated blob) per site.
    pub full_per_site: usize,
    /// Cache nodes per site.
    pub cache_per_site: usize,
}

impl Topology {
    /// Nodes in the cluster.
    pub fn nodes(&self) -> usize {
        self.sites * (self.full_per_site + self.cache_per_site)
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.sites, self.full_per_site)?;
        if self.cache_per_site > 0 {
            write!(f, "+{}", self.cache_per_site)?;
        }
        Ok(())
    }
}

/// A text that is not `SITESxNODES[+CACHE]`.
#[derive(Debug, thiserror::Error)]
#[error(
    "topology {0:?}: expected SITESxNODES[+CACHE], like 3x3 or 3x2+1 (1 to 5 sites, 1 to 5 nodes each)"
)]
pub struct BadTopology(String);

impl FromStr for Topology {
    type Err = BadTopology;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadTopology(text.to_string());
        let (shape, cache) = match text.split_once('+') {
            Some((shape, cache)) => (shape, cache.parse().map_err(|_| bad())?),
            None => (text, 0),
        };
        let (sites, full) = shape.split_once('x').ok_or_else(bad)?;
        let topology = Topology {
            sites: sites.parse().map_err(|_| bad())?,
            full_per_site: full.parse().map_err(|_| bad())?,
            cache_per_site: cache,
        };
        let in_range = |n: usize| (1..=5).contains(&n);
        if !in_range(topology.sites) || !in_range(topology.full_per_site) || cache > 2 {
            return Err(bad());
        }
        Ok(topology)
    }
}

/// A kind of fault the simulator may inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// Messages dropped.
    Loss,
    /// Latency spikes (which also reorder messages).
    Delay,
    /// Idempotent requests delivered twice.
    Duplicate,
    /// Sites cut off from each other, a node isolated, or one direction of a link cut.
    Partition,
    /// A node, a whole site or the whole cluster crashes and restarts, losing what was not fsynced.
    Crash,
    /// EIO and ENOSPC from the disk, torn writes at a crash, bits flipped in stored chunks.
    Disk,
    /// Node clocks skewed and jumping.
    Clock,
    /// Members removed and added back while the other faults go on.
    Membership,
}

impl FaultKind {
    /// Every kind, in a fixed order.
    pub const ALL: [FaultKind; 8] = [
        FaultKind::Loss,
        FaultKind::Delay,
        FaultKind::Duplicate,
        FaultKind::Partition,
        FaultKind::Crash,
        FaultKind::Disk,
        FaultKind::Clock,
        FaultKind::Membership,
    ];

    /// The name `--faults` takes.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Loss => "loss",
            FaultKind::Delay => "delay",
            FaultKind::Duplicate => "duplicate",
            FaultKind::Partition => "partition",
            FaultKind::Crash => "crash",
            FaultKind::Disk => "disk",
            FaultKind::Clock => "clock",
            FaultKind::Membership => "membership",
        }
    }
}

/// A comma-separated list of fault kinds, `all` or `none`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSet(pub BTreeSet<FaultKind>);

impl FaultSet {
    /// Every kind.
    pub fn all() -> FaultSet {
        FaultSet(FaultKind::ALL.into_iter().collect())
    }

    /// True when `kind` may be injected.
    pub fn has(&self, kind: FaultKind) -> bool {
        self.0.contains(&kind)
    }
}

impl fmt::Display for FaultSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = self.0.iter().map(|kind| kind.name()).collect();
        f.write_str(&names.join(","))
    }
}

/// A fault name that is not one of [`FaultKind::ALL`].
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown fault kind {0:?} (known: loss, delay, duplicate, partition, crash, disk, clock, membership, all, none)"
)]
pub struct UnknownFault(String);

impl FromStr for FaultSet {
    type Err = UnknownFault;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "all" => return Ok(FaultSet::all()),
            "none" | "" => return Ok(FaultSet(BTreeSet::new())),
            _ => {}
        }
        text.split(',')
            .map(|name| {
                FaultKind::ALL
                    .into_iter()
                    .find(|kind| kind.name() == name.trim())
                    .ok_or_else(|| UnknownFault(name.to_string()))
            })
            .collect::<Result<_, _>>()
            .map(FaultSet)
    }
}

/// One simulation.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Drives every choice the run makes.
    pub seed: u64,
    /// The cluster's shape.
    pub topology: Topology,
    /// Operations each site's client performs.
    pub ops_per_client: usize,
    /// Fault kinds that may be injected.
    pub faults: FaultSet,
    /// Deliberate bugs switched on in the node's code.
    pub defects: Vec<Defect>,
    /// Keep the trace's lines (not only its hash) to print them.
    pub keep_trace: bool,
}

impl SimConfig {
    /// The defaults for `seed`: three sites of one full node, 40 operations per client, every fault.
    pub fn new(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            topology: Topology {
                sites: 3,
                full_per_site: 1,
                cache_per_site: 0,
            },
            ops_per_client: 40,
            faults: FaultSet::all(),
            defects: Vec::new(),
            keep_trace: false,
        }
    }

    /// The command that replays this run.
    pub fn replay_command(&self) -> String {
        let mut command = format!(
            "arca-sim run --seed {} --topology {} --ops {} --faults {}",
            self.seed, self.topology, self.ops_per_client, self.faults
        );
        for defect in &self.defects {
            command.push_str(&format!(" --inject {defect}"));
        }
        command
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topologies_and_fault_sets_parse_and_print_back() {
        let topology: Topology = "3x2+1".parse().expect("topology");
        assert_eq!(topology.nodes(), 9);
        assert_eq!(topology.to_string(), "3x2+1");
        assert!("0x3".parse::<Topology>().is_err());
        assert!("3by3".parse::<Topology>().is_err());
        let faults: FaultSet = "crash,loss".parse().expect("faults");
        assert_eq!(faults.to_string(), "loss,crash");
        assert!("crash,fire".parse::<FaultSet>().is_err());
        assert_eq!("all".parse::<FaultSet>().expect("all"), FaultSet::all());
    }
}
