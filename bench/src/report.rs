//! Turning timed runs into throughputs, and printing them as a table or JSON.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

/// One measured operation: every run's time and the throughputs derived from them.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// What was measured, as the table shows it.
    pub label: String,
    /// Seconds each run took, in the order they ran.
    pub seconds: Vec<f64>,
    /// MiB/s of each run, in the order they ran.
    pub mib_per_s: Vec<f64>,
    /// The fastest run's MiB/s.
    pub best_mib_per_s: f64,
    /// The median run's MiB/s (the mean of the middle two for an even count).
    pub median_mib_per_s: f64,
    /// The fastest run's MiB/s less the slowest's, in percent of the median.
    pub spread_percent: f64,
}

impl Measurement {
    /// Builds a measurement of moving `bytes` once per run, from the runs' durations.
    /// Returns `None` when there were no runs.
    pub fn new(label: &str, bytes: u64, runs: &[Duration]) -> Option<Measurement> {
        let seconds: Vec<f64> = runs.iter().map(Duration::as_secs_f64).collect();
        let mib_per_s: Vec<f64> = seconds.iter().map(|s| mib_per_second(bytes, *s)).collect();
        let (best, median) = best_and_median(&mib_per_s)?;
        let worst = mib_per_s.iter().copied().fold(f64::INFINITY, f64::min);
        Some(Measurement {
            label: label.to_owned(),
            seconds,
            mib_per_s,
            best_mib_per_s: best,
            median_mib_per_s: median,
            spread_percent: (best - worst) / median.max(1e-9) * 100.0,
        })
    }

    /// Each run's MiB/s, as the tables list them.
    pub fn runs_text(&self) -> String {
        let runs: Vec<String> = self.mib_per_s.iter().map(|r| format!("{r:.1}")).collect();
        runs.join(" ")
    }
}

/// MiB/s of moving `bytes` in `seconds`.
pub fn mib_per_second(bytes: u64, seconds: f64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / seconds.max(1e-9)
}

/// The highest of `rates` and their median (the mean of the middle two for an even count), or `None`
/// when there are none.
pub fn best_and_median(rates: &[f64]) -> Option<(f64, f64)> {
    let mut sorted = rates.to_vec();
    sorted.sort_by(f64::total_cmp);
    let best = *sorted.last()?;
    let mid = sorted.len() / 2;
    let median = if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    };
    Some((best, median))
}

/// A measurement next to the baseline it is compared with.
#[derive(Debug, Clone, Serialize)]
pub struct Compared {
    /// The measurement.
    #[serde(flatten)]
    pub measurement: Measurement,
    /// Best MiB/s over the baseline's best MiB/s.
    pub ratio_best: f64,
    /// Median MiB/s over the baseline's median MiB/s.
    pub ratio_median: f64,
}

impl Compared {
    /// Compares `measurement` with `baseline`.
    pub fn new(measurement: Measurement, baseline: &Measurement) -> Compared {
        Compared {
            ratio_best: measurement.best_mib_per_s / baseline.best_mib_per_s,
            ratio_median: measurement.median_mib_per_s / baseline.median_mib_per_s,
            measurement,
        }
    }
}

/// Everything the `generic` benchmark found.
#[derive(Debug, Clone, Serialize)]
pub struct GenericReport {
    /// Always `"generic"`.
    pub benchmark: &'static str,
    /// File size in MiB.
    pub size_mib: u64,
    /// File size in bytes.
    pub size_bytes: u64,
    /// Runs of each measurement asked for.
    pub runs: usize,
    /// The temporary directory everything was written in (removed at the end).
    pub dir: String,
    /// sha256 of the source file, verified after every push and pull.
    pub sha256: String,
    /// The baseline: a plain copy of the source file on the same disk, fsynced.
    pub copy: Measurement,
    /// Pushes of fresh files, content the node had never seen.
    pub push_cold: Compared,
    /// Pushes of the source again as new versions, whose chunks the node already holds.
    pub push_dedup: Compared,
    /// Pulls of the pushed file into a new file, fsynced.
    pub pull: Compared,
    /// How to read the numbers.
    pub notes: Vec<String>,
    /// With `--storage garage`: the node against the bucket it keeps its chunks in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub garage: Option<GarageReport>,
}

impl GenericReport {
    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "arca-bench generic  size={} MiB  runs={}  dir={}",
            self.size_mib, self.runs, self.dir
        );
        row_header(&mut out, "copy", "runs");
        row(&mut out, &self.copy, None);
        row(&mut out, &self.push_cold.measurement, Some(&self.push_cold));
        row(
            &mut out,
            &self.push_dedup.measurement,
            Some(&self.push_dedup),
        );
        row(&mut out, &self.pull.measurement, Some(&self.pull));
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        if let Some(garage) = &self.garage {
            garage.write(&mut out);
        }
        out
    }
}

/// Appends the header of a table of [`row`]s whose ratios are to `baseline`, each listing its
/// `runs` last.
fn row_header(out: &mut String, baseline: &str, runs: &str) {
    let _ = writeln!(
        out,
        "{:<36} {:>12} {:>12} {:>10} {:>10} {:>7}  {runs} (MiB/s)",
        "",
        "best MiB/s",
        "median",
        format!("best/{baseline}"),
        format!("med/{baseline}"),
        "spread"
    );
}

/// Appends one table row: `m`, and its ratios to the baseline (`None`: it is the baseline).
fn row(out: &mut String, m: &Measurement, compared: Option<&Compared>) {
    let (best, median) = compared.map_or((1.0, 1.0), |c| (c.ratio_best, c.ratio_median));
    let _ = writeln!(
        out,
        "{:<36} {:>12.1} {:>12.1} {:>10.2} {:>10.2} {:>6.0}%  {}",
        m.label,
        m.best_mib_per_s,
        m.median_mib_per_s,
        best,
        median,
        m.spread_percent,
        m.runs_text()
    );
}

/// The rate one registry reached in each run of a measurement, in the unit of the measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Rates {
    /// Each run's rate, in the order they ran.
    pub runs: Vec<f64>,
    /// The highest rate.
    pub best: f64,
    /// The median rate (the mean of the middle two for an even count).
    pub median: f64,
}

impl Rates {
    /// Summarises the runs' rates; `None` when there were no runs.
    pub fn new(runs: Vec<f64>) -> Option<Rates> {
        let (best, median) = best_and_median(&runs)?;
        Some(Rates { runs, best, median })
    }
}

/// One measurement taken against Arca and against a peer registry.
#[derive(Debug, Clone, Serialize)]
pub struct SideBySide {
    /// What was measured, as the table shows it.
    pub label: String,
    /// The unit of every rate (`"MiB/s"`, `"req/s"`): higher is better.
    pub unit: &'static str,
    /// Arca's rates.
    pub arca: Rates,
    /// The peer's rates.
    pub peer: Rates,
    /// Arca's best over the peer's best.
    pub ratio_best: f64,
    /// Arca's median over the peer's median.
    pub ratio_median: f64,
}

impl SideBySide {
    /// Puts Arca's `arca` rates next to the peer's `peer` rates.
    pub fn new(label: &str, unit: &'static str, arca: Rates, peer: Rates) -> SideBySide {
        SideBySide {
            label: label.to_owned(),
            unit,
            ratio_best: arca.best / peer.best,
            ratio_median: arca.median / peer.median,
            arca,
            peer,
        }
    }
}

/// Everything the `oci` benchmark found.
#[derive(Debug, Clone, Serialize)]
pub struct OciReport {
    /// Always `"oci"`.
    pub benchmark: &'static str,
    /// The peer registry, with its version.
    pub peer: String,
    /// Size of each layer in MiB.
    pub layer_mib: u64,
    /// Layers in the image.
    pub layers: usize,
    /// Runs of each measurement asked for.
    pub runs: usize,
    /// Pulls of a layer by the single client, per run.
    pub pulls_one_client: u64,
    /// Concurrent clients of the concurrent pull.
    pub pull_clients: usize,
    /// Pulls of a layer by all the concurrent clients together, per run.
    pub pulls_many_clients: u64,
    /// Concurrent clients of the manifest GETs.
    pub manifest_clients: usize,
    /// Seconds each run of the manifest GETs lasts.
    pub manifest_seconds: f64,
    /// The temporary directory everything was written in (removed at the end).
    pub dir: String,
    /// Pushing the image: its layers concurrently, then its manifest.
    pub push: SideBySide,
    /// Pulling layers with one client.
    pub pull_one_client: SideBySide,
    /// Pulling layers with many concurrent clients.
    pub pull_many_clients: SideBySide,
    /// GETs of the manifest by tag.
    pub manifest_get: SideBySide,
    /// How to read the numbers.
    pub notes: Vec<String>,
    /// With `--storage garage`: the node against the bucket it keeps its chunks in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub garage: Option<GarageReport>,
}

impl OciReport {
    /// The human-readable table: medians, their ratio, and every run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "arca-bench oci  layer={} MiB  layers={}  runs={}  dir={}",
            self.layer_mib, self.layers, self.runs, self.dir
        );
        let _ = writeln!(
            out,
            "{:<32} {:>12} {:>14} {:>19}  runs: arca | distribution",
            "(medians)", "arca", "distribution", "arca/distribution"
        );
        for m in [
            &self.push,
            &self.pull_one_client,
            &self.pull_many_clients,
            &self.manifest_get,
        ] {
            let runs = |r: &Rates| {
                r.runs
                    .iter()
                    .map(|v| format!("{v:.0}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let _ = writeln!(
                out,
                "{:<32} {:>12.1} {:>14.1} {:>19.2}  {} | {}",
                format!("{} ({})", m.label, m.unit),
                m.arca.median,
                m.peer.median,
                m.ratio_median,
                runs(&m.arca),
                runs(&m.peer)
            );
        }
        let _ = writeln!(out, "peer: {}", self.peer);
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        if let Some(garage) = &self.garage {
            garage.write(&mut out);
        }
        out
    }
}

/// One operation through a bucket-backed node against the same bytes moved to or from the bucket
/// directly (the limit), run by run.
#[derive(Debug, Clone, Serialize)]
pub struct LimitRow {
    /// What was measured, as the table shows it.
    pub label: String,
    /// The unit of both sides (`"MiB/s"`): higher is better.
    pub unit: &'static str,
    /// Through Arca.
    pub arca: Spread,
    /// Directly to or from the bucket.
    pub direct: Spread,
    /// Arca's median over the direct median.
    pub ratio_median: f64,
}

impl LimitRow {
    /// Puts Arca's runs next to the direct ones; `None` when either side has no runs.
    pub fn new(label: &str, arca: Vec<f64>, direct: Vec<f64>) -> Option<LimitRow> {
        let (arca, direct) = (Spread::new(arca)?, Spread::new(direct)?);
        Some(LimitRow {
            label: label.to_owned(),
            unit: "MiB/s",
            ratio_median: arca.median / direct.median,
            arca,
            direct,
        })
    }
}

/// What the bucket holds after the pushes, against what was pushed.
#[derive(Debug, Clone, Serialize)]
pub struct BucketHeld {
    /// Bytes pushed through Arca, every push counted.
    pub pushed_bytes: u64,
    /// Of them, bytes of distinct content (what a deduplicating store needs to keep).
    pub unique_bytes: u64,
    /// Objects under the node's prefix.
    pub arca_objects: u64,
    /// Their bytes.
    pub arca_bytes: u64,
    /// Objects written directly, beside the node's.
    pub direct_objects: u64,
    /// Their bytes.
    pub direct_bytes: u64,
}

/// The node's object-store counters (`arca_storage_*` and `arca_chunk*` of its `/metrics`) over one
/// phase of the benchmark: how much each grew.
#[derive(Debug, Clone, Serialize)]
pub struct StoragePhase {
    /// What ran in the phase.
    pub label: String,
    /// Sample name (with labels) and how much it grew.
    pub counters: std::collections::BTreeMap<String, u64>,
}

impl StoragePhase {
    /// The growth of the sample `name` (0 when it is missing).
    fn get(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }

    /// One line: requests by kind, their summed time and mean, bytes, chunk work.
    fn describe(&self) -> String {
        const KINDS: [&str; 6] = ["get", "put", "head", "list", "copy", "delete"];
        let by_kind: Vec<String> = KINDS
            .iter()
            .map(|kind| {
                let count = self.get(&format!(
                    "arca_storage_requests_total{{request=\"{kind}\"}}"
                ));
                format!("{kind} {count}")
            })
            .collect();
        let requests: u64 = self
            .counters
            .iter()
            .filter(|(name, _)| name.starts_with("arca_storage_requests_total"))
            .map(|(_, count)| count)
            .sum();
        let micros = self.get("arca_storage_request_microseconds_total");
        let mib = |name: &str| self.get(name) as f64 / (1024.0 * 1024.0);
        format!(
            "requests {} ({}); errors {}, refused {}; request time {:.2} s summed, {:.1} ms each; written {:.1} \
             MiB, read {:.1} MiB; chunks written {}, deduplicated {}, memory-tier hits {}",
            requests,
            by_kind.join(", "),
            self.get("arca_storage_errors_total"),
            self.get("arca_storage_refused_total"),
            micros as f64 / 1e6,
            micros as f64 / 1e3 / requests.max(1) as f64,
            mib("arca_storage_bytes_written_total"),
            mib("arca_storage_bytes_read_total"),
            self.get("arca_chunks_written_total"),
            self.get("arca_chunks_deduplicated_total"),
            self.get("arca_chunk_cache_hits_total")
        )
    }
}

/// What `--storage garage` adds to the `generic` and `oci` reports: the node keeping its chunks in
/// a Garage bucket, against the same bytes moved to and from that bucket directly.
#[derive(Debug, Clone, Serialize)]
pub struct GarageReport {
    /// `garage --version`.
    pub store: String,
    /// The S3 endpoint.
    pub endpoint: String,
    /// The bucket.
    pub bucket: String,
    /// The prefix the node keeps its chunks under.
    pub node_prefix: String,
    /// The prefix the direct objects go under.
    pub direct_prefix: String,
    /// The `arca-node` binary run.
    pub node_bin: String,
    /// Runs of each row.
    pub runs: usize,
    /// Arca against the direct requests.
    pub rows: Vec<LimitRow>,
    /// The bucket after every push.
    pub held: BucketHeld,
    /// The node's object-store counters, phase by phase.
    pub phases: Vec<StoragePhase>,
    /// How to read the numbers.
    pub notes: Vec<String>,
}

impl GarageReport {
    /// Appends the section to a benchmark's table: the rows (median and spread), the bucket's
    /// contents, the counters of each phase, and the notes.
    pub fn write(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\nstorage: garage  {}  endpoint={}  bucket={}  node prefix={}  node={}",
            self.store, self.endpoint, self.bucket, self.node_prefix, self.node_bin
        );
        let _ = writeln!(
            out,
            "{:<44} {:>24} {:>24} {:>12}",
            format!("(median (min-max) of {} runs)", self.runs),
            "arca",
            "direct",
            "arca/direct"
        );
        for row in &self.rows {
            let _ = writeln!(
                out,
                "{:<44} {:>24} {:>24} {:>12.3}",
                format!("{} ({})", row.label, row.unit),
                row.arca.cell(1),
                row.direct.cell(1),
                row.ratio_median
            );
        }
        let h = &self.held;
        let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
        let _ = writeln!(
            out,
            "bucket after the pushes: node prefix {} objects, {:.1} MiB, for {:.1} MiB pushed ({:.1} \
             MiB distinct): held/distinct {:.3}, held/pushed {:.3}; direct prefix {} objects, {:.1} MiB",
            h.arca_objects,
            mib(h.arca_bytes),
            mib(h.pushed_bytes),
            mib(h.unique_bytes),
            h.arca_bytes as f64 / h.unique_bytes.max(1) as f64,
            h.arca_bytes as f64 / h.pushed_bytes.max(1) as f64,
            h.direct_objects,
            mib(h.direct_bytes)
        );
        let _ = writeln!(out, "the node's object-store counters, phase by phase:");
        for phase in &self.phases {
            let _ = writeln!(out, "  {}: {}", phase.label, phase.describe());
        }
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
    }
}

/// Latencies of one registry's answers in one measurement, over every run.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Answers timed.
    pub requests: u64,
    /// Median, in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, in milliseconds.
    pub p99_ms: f64,
    /// Slowest answer, in milliseconds.
    pub max_ms: f64,
}

impl Latency {
    /// Summarises per-request latencies in microseconds; `None` when there are none.
    pub fn from_micros(mut micros: Vec<u32>) -> Option<Latency> {
        micros.sort_unstable();
        let ms = |us: u32| f64::from(us) / 1000.0;
        Some(Latency {
            requests: micros.len() as u64,
            p50_ms: ms(percentile(&micros, 50.0)?),
            p99_ms: ms(percentile(&micros, 99.0)?),
            max_ms: ms(*micros.last()?),
        })
    }
}

/// The nearest-rank `p`th percentile of `sorted` (ascending), or `None` when it is empty.
pub fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
}

/// One kind of request timed against Arca and against a peer: rates and latencies.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRow {
    /// Requests per second of each run, and their ratio.
    #[serde(flatten)]
    pub rate: SideBySide,
    /// The peer registry this row compares with.
    pub peer_name: &'static str,
    /// What Arca answered with (`Content-Type`).
    pub arca_content_type: String,
    /// What the peer answered with (`Content-Type`).
    pub peer_content_type: String,
    /// Arca's latencies.
    pub arca_latency: Latency,
    /// The peer's latencies.
    pub peer_latency: Latency,
}

/// Everything the `packages` benchmark found.
#[derive(Debug, Clone, Serialize)]
pub struct PackagesReport {
    /// `"packages"` or `"formats"`.
    pub benchmark: &'static str,
    /// The peer registries, with their versions.
    pub peers: Vec<String>,
    /// Packages (npm) and projects (PyPI) published.
    pub packages: u64,
    /// Versions of each.
    pub versions: u64,
    /// Concurrent clients of every measurement.
    pub clients: usize,
    /// Seconds each run of a measurement lasts.
    pub seconds: f64,
    /// Runs of each measurement against each registry.
    pub runs: usize,
    /// Seconds publishing the dataset to every registry took (setup, not measured).
    pub setup_seconds: f64,
    /// The temporary directory everything was written in (removed at the end).
    pub dir: String,
    /// The measurements.
    pub rows: Vec<RequestRow>,
    /// How to read the numbers.
    pub notes: Vec<String>,
}

impl PackagesReport {
    /// The human-readable table: median req/s, their ratio, latency percentiles, and every run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "arca-bench {}  packages={}  versions={}  clients={}  seconds={}  runs={}  dir={}",
            self.benchmark,
            self.packages,
            self.versions,
            self.clients,
            self.seconds,
            self.runs,
            self.dir
        );
        let _ = writeln!(
            out,
            "{:<28} {:<11} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}  runs: arca | peer",
            "(req/s medians, ms)",
            "peer",
            "arca",
            "peer",
            "arca/peer",
            "arca p50",
            "arca p99",
            "peer p50",
            "peer p99"
        );
        for row in &self.rows {
            let runs = |r: &Rates| {
                r.runs
                    .iter()
                    .map(|v| format!("{v:.0}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let m = &row.rate;
            let _ = writeln!(
                out,
                "{:<28} {:<11} {:>10.0} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}  {} | {}",
                m.label,
                row.peer_name,
                m.arca.median,
                m.peer.median,
                m.ratio_median,
                row.arca_latency.p50_ms,
                row.arca_latency.p99_ms,
                row.peer_latency.p50_ms,
                row.peer_latency.p99_ms,
                runs(&m.arca),
                runs(&m.peer)
            );
        }
        for row in &self.rows {
            let _ = writeln!(
                out,
                "answered as: {}: arca {} | {} {}",
                row.rate.label, row.arca_content_type, row.peer_name, row.peer_content_type
            );
        }
        let _ = writeln!(
            out,
            "setup (publishing everywhere): {:.1} s",
            self.setup_seconds
        );
        for peer in &self.peers {
            let _ = writeln!(out, "peer: {peer}");
        }
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        out
    }
}

/// The runs of one figure: each run's value, their median and their spread.
#[derive(Debug, Clone, Serialize)]
pub struct Spread {
    /// Each run's value, in the order they ran.
    pub runs: Vec<f64>,
    /// The median (the mean of the middle two for an even count).
    pub median: f64,
    /// The lowest run.
    pub min: f64,
    /// The highest run.
    pub max: f64,
}

impl Spread {
    /// Summarises the runs; `None` when there were none.
    pub fn new(runs: Vec<f64>) -> Option<Spread> {
        let (max, median) = best_and_median(&runs)?;
        let min = runs.iter().copied().fold(f64::INFINITY, f64::min);
        Some(Spread {
            runs,
            median,
            min,
            max,
        })
    }

    /// `median (min-max)`, with `decimals` decimals.
    fn cell(&self, decimals: usize) -> String {
        format!(
            "{:.decimals$} ({:.decimals$}-{:.decimals$})",
            self.median, self.min, self.max
        )
    }
}

/// One figure of the `debian` benchmark, of Arca and (when it was measured) of the peer.
#[derive(Debug, Clone, Serialize)]
pub struct DebianFigure {
    /// What was measured, as the table shows it.
    pub label: String,
    /// Its unit (`"ms"`: lower is better; `"req/s"`: higher is better).
    pub unit: &'static str,
    /// Arca's runs.
    pub arca: Spread,
    /// The peer's runs (`None`: the peer has no such step, or is missing).
    pub peer: Option<Spread>,
    /// Arca's median over the peer's median.
    pub ratio_median: Option<f64>,
    /// When the figure is a rate of GETs: the bytes of each answer and the latencies, of Arca.
    pub arca_gets: Option<GetsOf>,
    /// The peer's.
    pub peer_gets: Option<GetsOf>,
}

/// What one server answered to GETs of one file.
#[derive(Debug, Clone, Serialize)]
pub struct GetsOf {
    /// Bytes of each answer.
    pub bytes: u64,
    /// Latencies over every run.
    pub latency: Latency,
}

impl GetsOf {
    /// `<bytes> bytes, <MiB/s at the median rate>, p50/p99 <ms>`.
    fn describe(&self, rate: &Spread) -> String {
        format!(
            "{} bytes, {:.0} MiB/s, p50/p99 {:.2}/{:.2} ms",
            self.bytes,
            self.bytes as f64 * rate.median / (1024.0 * 1024.0),
            self.latency.p50_ms,
            self.latency.p99_ms
        )
    }
}

impl DebianFigure {
    /// Puts Arca's runs next to the peer's (when there are any).
    pub fn new(label: &str, unit: &'static str, arca: Spread, peer: Option<Spread>) -> Self {
        DebianFigure {
            label: label.to_owned(),
            unit,
            ratio_median: peer.as_ref().map(|peer| arca.median / peer.median),
            arca,
            peer,
            arca_gets: None,
            peer_gets: None,
        }
    }
}

/// The `debian` benchmark's setup: generating the packages, loading Arca and the peer.
#[derive(Debug, Clone, Serialize)]
pub struct DebianSetup {
    /// Seconds generating every `.deb` (and writing it to disk) took.
    pub generate_seconds: f64,
    /// Their mean size in bytes.
    pub deb_mean_bytes: u64,
    /// Concurrent pushes while loading Arca.
    pub push_concurrency: usize,
    /// Seconds pushing the packages to Arca took.
    pub arca_push_seconds: f64,
    /// Milliseconds the first GET of `InRelease` took (every `Packages` file built, then the
    /// `Release`).
    pub arca_first_inrelease_ms: f64,
    /// Milliseconds the first GET of `Packages.gz` after it took.
    pub arca_first_packages_gz_ms: f64,
    /// Packages per `reprepro includedeb` while loading the peer.
    pub peer_batch: usize,
    /// Seconds loading the peer took (`None`: it is missing).
    pub peer_include_seconds: Option<f64>,
    /// Bytes of Arca's `Packages` and `Packages.gz` with every package loaded.
    pub arca_index_bytes: (u64, u64),
    /// Bytes of the peer's (`None`: it is missing).
    pub peer_index_bytes: Option<(u64, u64)>,
}

/// Everything the `debian` benchmark found.
#[derive(Debug, Clone, Serialize)]
pub struct DebianReport {
    /// Always `"debian"`.
    pub benchmark: &'static str,
    /// Packages loaded before the measured runs.
    pub packages: u64,
    /// Runs of each measurement.
    pub runs: usize,
    /// Concurrent clients of the GETs.
    pub clients: usize,
    /// Seconds each run of the GETs lasted.
    pub seconds: f64,
    /// The `arca-node` binary run.
    pub node_bin: String,
    /// The peer, with its version and whether it signs (or why it is missing).
    pub peer: String,
    /// The temporary directory everything was written in (removed at the end).
    pub dir: String,
    /// The setup.
    pub setup: DebianSetup,
    /// The figures.
    pub rows: Vec<DebianFigure>,
    /// How to read the numbers.
    pub notes: Vec<String>,
}

impl DebianReport {
    /// The human-readable table: medians with their spread, the ratio, then the setup.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "arca-bench debian  packages={}  runs={}  clients={}  seconds={}  dir={}",
            self.packages, self.runs, self.clients, self.seconds, self.dir
        );
        figures(&mut out, &self.rows, "reprepro");
        let s = &self.setup;
        let _ = writeln!(
            out,
            "setup: {} .debs generated in {:.1} s ({} bytes each on average); pushed to Arca {} at \
             a time in {:.1} s ({:.0}/s); first InRelease {:.0} ms, then Packages.gz {:.0} ms",
            self.packages + self.runs as u64,
            s.generate_seconds,
            s.deb_mean_bytes,
            s.push_concurrency,
            s.arca_push_seconds,
            self.packages as f64 / s.arca_push_seconds.max(1e-9),
            s.arca_first_inrelease_ms,
            s.arca_first_packages_gz_ms
        );
        if let Some(seconds) = s.peer_include_seconds {
            let _ = writeln!(
                out,
                "setup: reprepro includedeb of {} packages, {} per invocation: {seconds:.1} s",
                self.packages, s.peer_batch
            );
        }
        let (packages, gz) = s.arca_index_bytes;
        let peer = s.peer_index_bytes.map_or_else(
            || "-".to_owned(),
            |(packages, gz)| format!("{packages} / {gz}"),
        );
        let _ = writeln!(
            out,
            "index bytes (Packages / Packages.gz) with {} packages: arca {packages} / {gz} | \
             reprepro {peer}",
            self.packages
        );
        let _ = writeln!(out, "node: {}", self.node_bin);
        let _ = writeln!(out, "peer: {}", self.peer);
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        out
    }
}

/// The rows of figures: medians with their spread, the peer's (named `peer_name`) and the ratio,
/// then the bytes and latencies of the GETs.
fn figures(out: &mut String, rows: &[DebianFigure], peer_name: &str) {
    let _ = writeln!(
        out,
        "{:<40} {:>26} {:>26} {:>10}",
        "(median (min-max) of the runs)", "arca", peer_name, "arca/peer"
    );
    for row in rows {
        let decimals = if row.unit == "ms" { 1 } else { 0 };
        let _ = writeln!(
            out,
            "{:<40} {:>26} {:>26} {:>10}",
            format!("{} ({})", row.label, row.unit),
            row.arca.cell(decimals),
            row.peer
                .as_ref()
                .map_or_else(|| "-".to_owned(), |peer| peer.cell(decimals)),
            row.ratio_median
                .map_or_else(|| "-".to_owned(), |ratio| format!("{ratio:.3}"))
        );
    }
    for row in rows {
        if let Some(arca) = &row.arca_gets {
            let peer = match (&row.peer_gets, &row.peer) {
                (Some(gets), Some(rate)) => gets.describe(rate),
                _ => "-".to_owned(),
            };
            let _ = writeln!(
                out,
                "{}: arca {} | {peer_name} {peer}",
                row.label,
                arca.describe(&row.arca)
            );
        }
    }
}

/// What the `rpm` and `apt-install` benchmarks found: rows of figures of Arca against a peer.
#[derive(Debug, Clone, Serialize)]
pub struct ComparisonReport {
    /// `"rpm"` or `"apt-install"`.
    pub benchmark: &'static str,
    /// The parameters, as the table's first line shows them.
    pub parameters: String,
    /// The peer's column heading.
    pub peer_name: &'static str,
    /// The figures.
    pub rows: Vec<DebianFigure>,
    /// Setup figures and anything else measured besides the rows, one line each.
    pub setup: Vec<String>,
    /// The `arca-node` binary run.
    pub node_bin: String,
    /// The peer, with its version.
    pub peer: String,
    /// How to read the numbers.
    pub notes: Vec<String>,
}

impl ComparisonReport {
    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "arca-bench {}  {}", self.benchmark, self.parameters);
        figures(&mut out, &self.rows, self.peer_name);
        for line in &self.setup {
            let _ = writeln!(out, "setup: {line}");
        }
        let _ = writeln!(out, "node: {}", self.node_bin);
        let _ = writeln!(out, "peer: {}", self.peer);
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        out
    }
}

/// One timed interval of the `cluster` benchmark's replication samples.
#[derive(Debug, Clone, Serialize)]
pub struct LagRow {
    /// What was timed, as the table shows it.
    pub label: String,
    /// The samples' times (`requests` counts the samples).
    pub latency: Latency,
}

/// The replication samples of one blob size.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicationSize {
    /// Blob size in MiB.
    pub size_mib: u64,
    /// Blobs timed of each kind (read-polled and unread), not counting the warm-up blob.
    pub samples: usize,
    /// GETs sent to the reading node over all read-polled samples.
    pub get_polls: u64,
    /// Answers 200 whose body had the wrong size or sha256 (should be 0).
    pub wrong_bodies: u64,
    /// The intervals timed.
    pub rows: Vec<LagRow>,
}

/// Chunk transfer with one concurrency: plain TCP (the limit) and QUIC.
#[derive(Debug, Clone, Serialize)]
pub struct TransferPair {
    /// Chunks in flight at once (TCP connections, or QUIC streams on one connection).
    pub concurrency: usize,
    /// Plain TCP copy of the same bytes.
    pub tcp: Measurement,
    /// The same over TLS 1.3 on TCP (rustls, the nodes' configuration), with its ratios to TCP.
    pub tls: Compared,
    /// The node's QUIC transport, with its ratios to TCP.
    pub quic: Compared,
    /// QUIC's median MiB/s over TLS on TCP's.
    pub quic_to_tls_median: f64,
}

/// Chunks fetched over QUIC through one impaired link (delay and loss, see `impairment`).
#[derive(Debug, Clone, Serialize)]
pub struct WanRow {
    /// Round trip the link adds.
    pub round_trip_ms: u64,
    /// Datagrams it drops each way, in percent.
    pub loss_percent: f64,
    /// MiB moved per run.
    pub mib: u64,
    /// Fetches in flight.
    pub concurrency: usize,
    /// Throughput of each run.
    pub measurement: Measurement,
    /// Seconds the median run took.
    pub median_seconds: f64,
    /// The same in round trips of the link.
    pub median_round_trips: f64,
}

/// Metadata writes against one cluster for a fixed time.
#[derive(Debug, Clone, Serialize)]
pub struct CommitRow {
    /// What was measured, as the table shows it.
    pub label: String,
    /// Writes answered 200 (each one committed Raft log entry), over every run.
    pub commits: u64,
    /// Seconds from the first request to the last answer, summed over every run.
    pub seconds: f64,
    /// Commits per second of each run.
    pub commits_per_s: Rates,
    /// Writes that failed (not 200, or no answer).
    pub errors: u64,
    /// The first failure, when there was one.
    pub first_error: Option<String>,
    /// Latencies of the successful writes over every run (`None` when there were none).
    pub latency: Option<Latency>,
    /// Median commits per second over the single-node cluster's.
    pub ratio_to_single: f64,
}

/// A node of the cluster and its site.
#[derive(Debug, Clone, Serialize)]
pub struct NodeSite {
    /// Node id.
    pub id: u64,
    /// Its site.
    pub site: String,
}

/// Everything the `cluster` benchmark found.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterReport {
    /// Always `"cluster"`.
    pub benchmark: &'static str,
    /// Every node of the cluster.
    pub nodes: Vec<NodeSite>,
    /// The Raft leader when measuring started.
    pub leader: Option<u64>,
    /// The node the blobs were pushed to.
    pub writer: u64,
    /// The node they were read at.
    pub reader: u64,
    /// Replication lag, per blob size.
    pub replication: Vec<ReplicationSize>,
    /// Chunks moved per transfer run.
    pub chunks: usize,
    /// Size of each chunk in MiB.
    pub chunk_mib: u64,
    /// Runs of each transfer measurement.
    pub runs: usize,
    /// Chunk transfer throughput, per concurrency.
    pub transfer: Vec<TransferPair>,
    /// 64 MiB over QUIC through impaired links.
    pub wan: Vec<WanRow>,
    /// Concurrent clients of the metadata writes.
    pub clients: usize,
    /// Seconds each run of a row of metadata writes lasted (as asked).
    pub seconds: f64,
    /// Metadata writes: the single-node baseline first.
    pub commits: Vec<CommitRow>,
    /// The temporary directory everything was written in (removed at the end).
    pub dir: String,
    /// How to read the numbers.
    pub notes: Vec<String>,
}

impl ClusterReport {
    /// The human-readable table: three sections (replication, transfer, metadata writes).
    pub fn table(&self) -> String {
        let mut out = String::new();
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("{}@{}", node.id, node.site))
            .collect();
        let leader = self
            .leader
            .map_or_else(|| "none".to_owned(), |id| id.to_string());
        let _ = writeln!(
            out,
            "arca-bench cluster  nodes={}  leader={leader}  dir={}",
            nodes.join(","),
            self.dir
        );
        if !self.replication.is_empty() {
            let _ = writeln!(
                out,
                "\nreplication: PUT at node {}, read at node {} (ms)",
                self.writer, self.reader
            );
            let _ = writeln!(
                out,
                "{:<56} {:>7} {:>9} {:>9} {:>9}",
                "", "samples", "p50", "p99", "max"
            );
            for size in &self.replication {
                for lag in &size.rows {
                    let l = &lag.latency;
                    let _ = writeln!(
                        out,
                        "{:<56} {:>7} {:>9.1} {:>9.1} {:>9.1}",
                        format!("{:>2} MiB  {}", size.size_mib, lag.label),
                        l.requests,
                        l.p50_ms,
                        l.p99_ms,
                        l.max_ms
                    );
                }
                let _ = writeln!(
                    out,
                    "{:>2} MiB  GETs at node {}: {}, wrong bodies: {}",
                    size.size_mib, self.reader, size.get_polls, size.wrong_bodies
                );
            }
        }
        let _ = writeln!(
            out,
            "\nchunk transfer: {} chunks of {} MiB over 127.0.0.1, runs={}",
            self.chunks, self.chunk_mib, self.runs
        );
        row_header(&mut out, "tcp", "runs");
        for pair in &self.transfer {
            row(&mut out, &pair.tcp, None);
            row(&mut out, &pair.tls.measurement, Some(&pair.tls));
            row(&mut out, &pair.quic.measurement, Some(&pair.quic));
            let _ = writeln!(
                out,
                "{:<36} {:>12} {:>12.2}",
                "  quic / tls over tcp (median)", "", pair.quic_to_tls_median
            );
        }
        if let Some(first) = self.wan.first() {
            let _ = writeln!(
                out,
                "\nover an impaired link (a userspace UDP relay: half the delay and the loss each way): \
                 {} MiB in {} MiB chunks, {} fetches at once, a new connection per run",
                first.mib, self.chunk_mib, first.concurrency
            );
            let _ = writeln!(
                out,
                "{:<36} {:>12} {:>10} {:>12} {:>12}  runs (MiB/s)",
                "", "median MiB/s", "spread", "median s", "round trips"
            );
            for wan in &self.wan {
                let m = &wan.measurement;
                let _ = writeln!(
                    out,
                    "{:<36} {:>12.1} {:>9.0}% {:>12.2} {:>12.1}  {}",
                    m.label,
                    m.median_mib_per_s,
                    m.spread_percent,
                    wan.median_seconds,
                    wan.median_round_trips,
                    m.runs_text()
                );
            }
        }
        if !self.commits.is_empty() {
            let _ = writeln!(
                out,
                "\nmetadata writes: {} clients x {} s, runs={}",
                self.clients, self.seconds, self.runs
            );
            let _ = writeln!(
                out,
                "{:<44} {:>10} {:>9} {:>9} {:>9} {:>9} {:>7}  runs (commits/s)",
                "(median)", "commits/s", "p50 ms", "p99 ms", "max ms", "vs 1 node", "errors"
            );
            for commit in &self.commits {
                let (p50, p99, max) = commit
                    .latency
                    .as_ref()
                    .map_or((f64::NAN, f64::NAN, f64::NAN), |l| {
                        (l.p50_ms, l.p99_ms, l.max_ms)
                    });
                let runs: Vec<String> = commit
                    .commits_per_s
                    .runs
                    .iter()
                    .map(|r| format!("{r:.0}"))
                    .collect();
                let _ = writeln!(
                    out,
                    "{:<44} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>7}  {}",
                    commit.label,
                    commit.commits_per_s.median,
                    p50,
                    p99,
                    max,
                    commit.ratio_to_single,
                    commit.errors,
                    runs.join(" ")
                );
                if let Some(error) = &commit.first_error {
                    let _ = writeln!(out, "  first error: {error}");
                }
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        out
    }
}

/// Latencies of one way of GETting the same files, next to the baseline's.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyCompared {
    /// What was measured, as the table shows it.
    pub label: String,
    /// The latencies.
    pub latency: Latency,
    /// p50 over the baseline's p50 (above 1: slower).
    pub p50_ratio: f64,
    /// p99 over the baseline's p99 (above 1: slower).
    pub p99_ratio: f64,
}

impl LatencyCompared {
    /// Compares `latency` with `baseline` (itself for the baseline row).
    pub fn new(label: &str, latency: Latency, baseline: &Latency) -> LatencyCompared {
        LatencyCompared {
            label: label.to_owned(),
            p50_ratio: latency.p50_ms / baseline.p50_ms,
            p99_ratio: latency.p99_ms / baseline.p99_ms,
            latency,
        }
    }
}

/// The generic half of the `remote` benchmark: the same files GET directly from the upstream, through
/// the remote registry on a miss, and through it on a hit.
#[derive(Debug, Clone, Serialize)]
pub struct RemoteGeneric {
    /// Small files, each GET once per way.
    pub small_files: usize,
    /// Size of each small file in MiB.
    pub small_mib: u64,
    /// Latencies of the small files: direct repeated (the baseline), direct first, cold, warm.
    pub small: Vec<LatencyCompared>,
    /// Large files, each GET once per way (one run of the measurements below each).
    pub large_files: usize,
    /// Size of each large file in MiB.
    pub large_mib: u64,
    /// Large files GET directly from the upstream a second time: the baseline.
    pub large_direct: Measurement,
    /// Large files GET directly from the upstream the first time.
    pub large_direct_first: Compared,
    /// Large files GET through the remote registry, first request (a miss).
    pub large_cold: Compared,
    /// Large files GET through the remote registry, second request (a hit).
    pub large_warm: Compared,
    /// Upstream fetches the proxy node counted for the remote registry (`arca_remote_misses_total`).
    pub proxy_misses: u64,
    /// Answers from its cache the proxy node counted (`arca_remote_hits_total`).
    pub proxy_hits: u64,
}

/// The npm half of the `remote` benchmark: repeated installs through the remote registry.
#[derive(Debug, Clone, Serialize)]
pub struct RemoteNpm {
    /// Packages published to the upstream (one version each).
    pub packages: u64,
    /// Installs: rounds of every packument, then every tarball.
    pub rounds: usize,
    /// Requests in flight at once within a round.
    pub concurrency: usize,
    /// Packument GETs sent to the remote registry.
    pub client_packument_gets: u64,
    /// Tarball GETs sent to the remote registry.
    pub client_tarball_gets: u64,
    /// What the remote answered packument GETs with (`Content-Type`).
    pub packument_content_type: String,
    /// Body bytes of every packument the clients received.
    pub client_packument_bytes: u64,
    /// Body bytes of every tarball the clients received.
    pub client_tarball_bytes: u64,
    /// Body bytes the clients received in all.
    pub client_bytes: u64,
    /// Packuments the upstream served to the proxy (GETs answered 200 during the packument phases).
    pub upstream_packument_fetches: u64,
    /// Their body bytes: fetches times the mean size of the full packuments the upstream serves.
    pub upstream_packument_bytes: u64,
    /// Tarballs the upstream served to the proxy (GETs answered 200 during the tarball phases).
    pub upstream_tarball_fetches: u64,
    /// Their body bytes (the upstream's `arca_download_bytes_total`).
    pub upstream_tarball_bytes: u64,
    /// Body bytes the upstream served in all.
    pub upstream_bytes: u64,
    /// 1 - upstream bytes / client bytes.
    pub saving: f64,
    /// Hits the proxy node counted for the remote registry.
    pub proxy_hits: u64,
    /// Misses (upstream fetches) it counted.
    pub proxy_misses: u64,
    /// hits / (hits + misses).
    pub hit_ratio: f64,
    /// Milliseconds the first install (every packument and tarball a miss) took.
    pub cold_round_ms: f64,
    /// The later installs (`None` with a single round).
    pub warm_rounds: Option<Latency>,
}

/// The npm cold-miss rows of the `remote` benchmark: packuments a static upstream serves, GET
/// directly, through a fresh remote registry (misses) and through it again (hits). Every row of a
/// group is priced in the upstream's bytes, so a ratio is the direct time over the row's time.
#[derive(Debug, Clone, Serialize)]
pub struct RemoteNpmMisses {
    /// Runs of each row (each run through a remote registry of its own).
    pub runs: u64,
    /// Versions in the large packument.
    pub large_versions: usize,
    /// Its bytes as the upstream serves it.
    pub large_upstream_bytes: u64,
    /// The large packument GET directly.
    pub large_direct: Measurement,
    /// Through the remote, a miss.
    pub large_cold: Compared,
    /// Through the remote again, a hit.
    pub large_warm: Compared,
    /// Small packuments GET in a row.
    pub small_packuments: usize,
    /// Their bytes as the upstream serves them.
    pub small_upstream_bytes: u64,
    /// The small packuments GET directly.
    pub small_direct: Measurement,
    /// Through the remote, misses.
    pub small_cold: Compared,
    /// Through the remote again, hits.
    pub small_warm: Compared,
}

impl RemoteNpmMisses {
    /// Appends the rows, and what a miss adds to the direct time, to `out`.
    fn table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "
npm cold misses: packuments from a static upstream, {} runs, a fresh remote each run              (MiB/s of the upstream's bytes)",
            self.runs
        );
        row_header(out, "dir.", "runs");
        let median_ms = |m: &Measurement| {
            let mut seconds = m.seconds.clone();
            seconds.sort_by(f64::total_cmp);
            seconds.get(seconds.len() / 2).copied().unwrap_or_default() * 1000.0
        };
        for (direct, cold, warm) in [
            (&self.large_direct, &self.large_cold, &self.large_warm),
            (&self.small_direct, &self.small_cold, &self.small_warm),
        ] {
            row(out, direct, None);
            row(out, &cold.measurement, Some(cold));
            row(out, &warm.measurement, Some(warm));
            let _ = writeln!(
                out,
                "  median ms: direct {:.1}, cold {:.1} (adds {:.1}), warm {:.1}",
                median_ms(direct),
                median_ms(&cold.measurement),
                median_ms(&cold.measurement) - median_ms(direct),
                median_ms(&warm.measurement)
            );
        }
    }
}

/// Everything the `remote` benchmark found.
#[derive(Debug, Clone, Serialize)]
pub struct RemoteReport {
    /// Always `"remote"`.
    pub benchmark: &'static str,
    /// The upstream node's address.
    pub upstream: String,
    /// The proxy node's address.
    pub proxy: String,
    /// The remote registries' metadata time to live.
    pub metadata_ttl_seconds: u64,
    /// The temporary directory everything was written in (removed at the end).
    pub dir: String,
    /// Generic files.
    pub generic: RemoteGeneric,
    /// npm installs.
    pub npm: RemoteNpm,
    /// npm packuments missed and hit.
    pub npm_misses: RemoteNpmMisses,
    /// How to read the numbers.
    pub notes: Vec<String>,
}

impl RemoteReport {
    /// The human-readable table: generic latencies, generic throughput, npm traffic.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let g = &self.generic;
        let _ = writeln!(
            out,
            "arca-bench remote  upstream={}  proxy={}  ttl={} s  dir={}",
            self.upstream, self.proxy, self.metadata_ttl_seconds, self.dir
        );
        let _ = writeln!(
            out,
            "\ngeneric: {} files of {} MiB, one GET each way (ms)",
            g.small_files, g.small_mib
        );
        let _ = writeln!(
            out,
            "{:<36} {:>9} {:>9} {:>9} {:>11} {:>11}",
            "", "p50", "p99", "max", "p50/direct", "p99/direct"
        );
        for m in &g.small {
            let l = &m.latency;
            let _ = writeln!(
                out,
                "{:<36} {:>9.2} {:>9.2} {:>9.2} {:>11.2} {:>11.2}",
                m.label, l.p50_ms, l.p99_ms, l.max_ms, m.p50_ratio, m.p99_ratio
            );
        }
        let _ = writeln!(
            out,
            "\ngeneric: {} files of {} MiB, one GET each way",
            g.large_files, g.large_mib
        );
        row_header(&mut out, "dir.", "files");
        row(&mut out, &g.large_direct, None);
        row(
            &mut out,
            &g.large_direct_first.measurement,
            Some(&g.large_direct_first),
        );
        row(&mut out, &g.large_cold.measurement, Some(&g.large_cold));
        row(&mut out, &g.large_warm.measurement, Some(&g.large_warm));
        let _ = writeln!(
            out,
            "proxy node counted {} misses and {} hits for the generic remote",
            g.proxy_misses, g.proxy_hits
        );

        let n = &self.npm;
        let _ = writeln!(
            out,
            "\nnpm: {} installs of {} packages through the remote (each: every abbreviated packument, \
             then every latest tarball; {} at a time)",
            n.rounds, n.packages, n.concurrency
        );
        let _ = writeln!(
            out,
            "{:<36} {:>14} {:>14} {:>14}",
            "", "all", "packuments", "tarballs"
        );
        for (label, packuments, tarballs) in [
            (
                "GETs answered to the clients",
                n.client_packument_gets,
                n.client_tarball_gets,
            ),
            (
                "body bytes received by the clients",
                n.client_packument_bytes,
                n.client_tarball_bytes,
            ),
            (
                "GETs answered by the upstream",
                n.upstream_packument_fetches,
                n.upstream_tarball_fetches,
            ),
            (
                "body bytes served by the upstream",
                n.upstream_packument_bytes,
                n.upstream_tarball_bytes,
            ),
        ] {
            let _ = writeln!(
                out,
                "{label:<36} {:>14} {packuments:>14} {tarballs:>14}",
                packuments + tarballs
            );
        }
        let _ = writeln!(
            out,
            "saving (1 - upstream/clients): {:.2} %   hit ratio: {:.4} ({} hits, {} misses)",
            n.saving * 100.0,
            n.hit_ratio,
            n.proxy_hits,
            n.proxy_misses
        );
        match &n.warm_rounds {
            Some(warm) => {
                let _ = writeln!(
                    out,
                    "install time: cold {:.1} ms; warm p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} installs)",
                    n.cold_round_ms, warm.p50_ms, warm.p99_ms, warm.max_ms, warm.requests
                );
            }
            None => {
                let _ = writeln!(out, "install time: cold {:.1} ms", n.cold_round_ms);
            }
        }
        let _ = writeln!(out, "packuments answered as: {}", n.packument_content_type);
        self.npm_misses.table(&mut out);
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        out
    }
}

/// What the `scale` benchmark was asked to do, known before it starts.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleSetup {
    /// Always `"scale"`.
    pub benchmark: &'static str,
    /// The `arca-node` binary run as the node's process.
    pub node_bin: String,
    /// Versions pushed in the phases.
    pub versions: u64,
    /// Versions per package.
    pub versions_per_package: u64,
    /// Bytes of each pushed file.
    pub size: u64,
    /// Concurrent clients pushing.
    pub clients: usize,
    /// Phases the pushes are split into.
    pub phases: u64,
    /// Packages per listing page.
    pub page_size: u64,
    /// The temporary directory everything was written in (removed at the end).
    pub dir: String,
}

impl ScaleSetup {
    /// The title line and the header of the phase rows ([`ScalePhase::row`]).
    pub fn head(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "arca-bench scale  versions={} ({} per package)  size={} B  clients={}  phases={}  \
             node={}  dir={}",
            self.versions,
            self.versions_per_package,
            self.size,
            self.clients,
            self.phases,
            self.node_bin,
            self.dir
        );
        let _ = writeln!(
            out,
            "\npushes by phase; after each, with pushes paused: the node's memory, its data \
             directory, listing pages (median ms) and its CPU during the phase"
        );
        let _ = writeln!(
            out,
            "{:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8} {:>8} {:>6} {:>7} {:>8} {:>9}",
            "versions",
            "pushes/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "RSS MiB",
            "peak MiB",
            "data MiB",
            "page ms",
            "deep ms",
            "deep#",
            "CPU s",
            "CPU us/p",
            "elapsed s"
        );
        out
    }
}

/// The deepest listing page timed after a phase.
#[derive(Debug, Clone, Serialize)]
pub struct DeepPage {
    /// Its number, from 1 (20 unless the listing has fewer pages).
    pub page: u64,
    /// How it was reached: `"cursor"` (following `next_cursor` from the first page) or `"page"`
    /// (`page=N`, when the node gives no cursors).
    pub by: &'static str,
    /// Packages on it.
    pub items: u64,
    /// Median milliseconds of its GETs.
    pub ms: f64,
}

/// One phase of the `scale` benchmark's pushes, and the node measured after it.
#[derive(Debug, Clone, Serialize)]
pub struct ScalePhase {
    /// The phase's number, from 1.
    pub phase: u64,
    /// Versions stored when the phase ended.
    pub versions: u64,
    /// Pushes in the phase.
    pub pushes: u64,
    /// Seconds from its first push to its last answer.
    pub seconds: f64,
    /// Pushes per second.
    pub pushes_per_s: f64,
    /// Push latencies.
    pub latency: Latency,
    /// The node's resident memory after the phase (`VmRSS`), in MiB.
    pub rss_mib: f64,
    /// The node's peak resident memory so far (`VmHWM`), in MiB.
    pub peak_rss_mib: f64,
    /// Bytes of the files in the node's data directory (its log left out), in MiB.
    pub data_dir_mib: f64,
    /// Median milliseconds of a GET of the first listing page.
    pub first_page_ms: f64,
    /// The deep listing page.
    pub deep_page: DeepPage,
    /// CPU seconds (user and system) the node used during the phase's pushes.
    pub cpu_seconds: f64,
    /// Those CPU seconds per push, in microseconds.
    pub cpu_us_per_push: f64,
    /// Seconds since the first phase began.
    pub elapsed_s: f64,
}

impl ScalePhase {
    /// The phase's line under [`ScaleSetup::head`].
    pub fn row(&self) -> String {
        let l = &self.latency;
        format!(
            "{:>9} {:>9.0} {:>8.2} {:>8.2} {:>8.1} {:>8.0} {:>8.0} {:>9.1} {:>8.2} {:>8.2} {:>6} {:>7.1} {:>8.0} {:>9.0}\n",
            self.versions,
            self.pushes_per_s,
            l.p50_ms,
            l.p99_ms,
            l.max_ms,
            self.rss_mib,
            self.peak_rss_mib,
            self.data_dir_mib,
            self.first_page_ms,
            self.deep_page.ms,
            self.deep_page.page,
            self.cpu_seconds,
            self.cpu_us_per_push,
            self.elapsed_s
        )
    }
}

/// Pushes for a fixed time.
#[derive(Debug, Clone, Serialize)]
pub struct PushWindow {
    /// Pushes answered 201.
    pub pushes: u64,
    /// Seconds from the first push to the last answer.
    pub seconds: f64,
    /// Pushes per second.
    pub pushes_per_s: f64,
    /// Their latencies (`None` when there were none).
    pub latency: Option<Latency>,
}

/// Push latency while the node builds metadata snapshots, against without.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotEffect {
    /// Seconds of each window of pushes.
    pub seconds: f64,
    /// Pushes with no snapshot asked for.
    pub plain: PushWindow,
    /// Whether the node has `POST /api/v1/cluster/snapshot` (false: it answered 404 or 405).
    pub available: bool,
    /// Pushes while snapshots were built one after the other (`None` when unavailable).
    pub during: Option<PushWindow>,
    /// Milliseconds each `POST /api/v1/cluster/snapshot` took to answer 200 (a snapshot built).
    pub builds_ms: Vec<f64>,
    /// The first answer that was not 200 (nor a 404 or 405 meaning unavailable).
    pub error: Option<String>,
    /// p99 while building over p99 without (the target is at most 2).
    pub p99_ratio: Option<f64>,
}

/// Restarting the node on the same data directory and ports.
#[derive(Debug, Clone, Serialize)]
pub struct Restart {
    /// How the node was stopped: `"SIGTERM"` (then waited for) or `"SIGKILL"`.
    pub signal: &'static str,
    /// Milliseconds from the signal to the process's exit.
    pub stop_ms: f64,
    /// Milliseconds from spawning the new process to the first GET of the last pushed file
    /// answered 200 with its bytes.
    pub first_get_ms: f64,
}

/// A second node joining the first and catching up.
#[derive(Debug, Clone, Serialize)]
pub struct CatchUp {
    /// Seconds from the second node's spawn until it had caught up (by `by`).
    pub seconds: f64,
    /// What "caught up" was: `"lag 0"` (the first node's cluster status) or `"GET at node 2"` (the
    /// last pushed file served by the second node, when the status shows no lag).
    pub by: &'static str,
    /// Seconds from the spawn until the status showed the second node with lag 0.
    pub lag_zero_s: Option<f64>,
    /// Seconds from the spawn until the second node served the last pushed file with its bytes.
    pub readable_s: Option<f64>,
    /// The second node's membership at the end (`learner` or `voter`).
    pub membership: String,
    /// The first node's highest resident memory sampled during the catch-up, in MiB.
    pub node1_peak_rss_mib: f64,
    /// The second node's highest resident memory sampled during the catch-up, in MiB.
    pub node2_peak_rss_mib: f64,
    /// The second node's peak resident memory (`VmHWM`) at the end, in MiB.
    pub node2_hwm_mib: f64,
}

/// One npm package of many versions: publishing it, and reading its abbreviated packument.
#[derive(Debug, Clone, Serialize)]
pub struct NpmPackument {
    /// The package.
    pub package: String,
    /// Its versions.
    pub versions: u64,
    /// Seconds publishing every version took.
    pub publish_seconds: f64,
    /// Concurrent publishers.
    pub publishers: usize,
    /// Publishes answered 409 and sent again.
    pub conflicts_retried: u64,
    /// Bytes of the abbreviated packument.
    pub packument_bytes: u64,
    /// What it was answered as (`Content-Type`).
    pub content_type: String,
    /// Concurrent readers.
    pub readers: usize,
    /// Seconds they read for.
    pub seconds: f64,
    /// Packuments per second.
    pub per_s: f64,
    /// Their latencies.
    pub latency: Latency,
}

/// Everything the `scale` benchmark found.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleReport {
    /// What was asked.
    #[serde(flatten)]
    pub setup: ScaleSetup,
    /// The phases of pushes, in order.
    pub by_phase: Vec<ScalePhase>,
    /// The node's CPU over the idle seconds after the last phase, in percent of one core.
    pub idle_cpu_percent: f64,
    /// Seconds of that idle window.
    pub idle_seconds: f64,
    /// One garbage collection over every chunk file.
    pub gc: GcPass,
    /// Push latency while snapshots are built.
    pub snapshot: SnapshotEffect,
    /// The last file pushed (read back after restarts and at the second node).
    pub last_file: String,
    /// Versions stored in the generic registry in all (the phases' and the snapshot windows').
    pub versions_stored: u64,
    /// Restarts (`None` with `--skip-restart`).
    pub restarts: Option<Vec<Restart>>,
    /// Web UI pages over the generic registry, after the last phase.
    pub ui_pages: Vec<UiPageTime>,
    /// The npm package (`None` with `--skip-npm`, or when it failed).
    pub npm: Option<NpmPackument>,
    /// The second node's catch-up (`None` with `--skip-learner`, or when it failed).
    pub catch_up: Option<CatchUp>,
    /// The steps skipped as asked (`"restart"`, `"npm"`, `"second node"`).
    pub skipped: Vec<&'static str>,
    /// Why steps that did not stop the run failed (the npm package, the second node).
    pub errors: Vec<String>,
    /// How to read the numbers.
    pub notes: Vec<String>,
}

/// A web UI page timed at the run's full size.
#[derive(Debug, Clone, Serialize)]
pub struct UiPageTime {
    /// What the page is.
    pub page: &'static str,
    /// Its path.
    pub path: String,
    /// Median milliseconds of its GETs, to the last byte.
    pub median_ms: f64,
    /// The slowest GET.
    pub max_ms: f64,
    /// Bytes of HTML.
    pub bytes: u64,
}

/// The most milliseconds a UI page may take at a million versions (issue 18).
pub const UI_PAGE_LIMIT_MS: f64 = 100.0;

/// One garbage collection of a scale run.
#[derive(Debug, Clone, Serialize)]
pub struct GcPass {
    /// Seconds it took.
    pub seconds: f64,
    /// Chunk files listed.
    pub scanned: u64,
    /// Of them, the ones a live blob uses.
    pub referenced: u64,
}

impl ScaleReport {
    /// What follows the phase rows: idle CPU, snapshots, restarts, npm, catch-up, notes.
    pub fn tail(&self) -> String {
        let mut out = String::new();
        if let Some(last) = self.by_phase.last() {
            let _ = writeln!(
                out,
                "deep page: page {} (pages of {} packages), {}",
                last.deep_page.page,
                self.setup.page_size,
                match last.deep_page.by {
                    "cursor" => "reached by following next_cursor from the first page",
                    _ => "asked for as page=N (the node gave no next_cursor)",
                }
            );
        }
        if !self.ui_pages.is_empty() {
            let api_ms = self.by_phase.last().map_or(0.0, |last| last.first_page_ms);
            let _ = writeln!(
                out,
                "\nweb UI pages with {} versions stored (median of GETs; ratio to the API's first \
                 listing page, {api_ms:.2} ms, and to the {UI_PAGE_LIMIT_MS:.0} ms limit)",
                self.by_phase.last().map_or(0, |last| last.versions)
            );
            let _ = writeln!(
                out,
                "{:<34} {:>9} {:>9} {:>9} {:>10} {:>9}",
                "", "p50 ms", "max ms", "bytes", "/ API page", "/ limit"
            );
            for page in &self.ui_pages {
                let _ = writeln!(
                    out,
                    "{:<34} {:>9.2} {:>9.2} {:>9} {:>10.2} {:>9.3}",
                    page.page,
                    page.median_ms,
                    page.max_ms,
                    page.bytes,
                    page.median_ms / api_ms.max(1e-9),
                    page.median_ms / UI_PAGE_LIMIT_MS
                );
            }
        }
        let _ = writeln!(
            out,
            "\nidle: node CPU over {:.0} s after the last phase: {:.2} % of one core",
            self.idle_seconds, self.idle_cpu_percent
        );
        let _ = writeln!(
            out,
            "gc: one collection over {} chunk files ({} referenced) took {:.2} s",
            self.gc.scanned, self.gc.referenced, self.gc.seconds
        );

        let s = &self.snapshot;
        let _ = writeln!(
            out,
            "\npushes with and without metadata snapshots being built: {} clients x {:.0} s each",
            self.setup.clients, s.seconds
        );
        let _ = writeln!(
            out,
            "{:<44} {:>8} {:>9} {:>8} {:>8} {:>8}",
            "", "pushes", "pushes/s", "p50 ms", "p99 ms", "max ms"
        );
        window_row(&mut out, "no snapshot asked for", &s.plain);
        match &s.during {
            Some(during) => {
                let builds: Vec<String> = s.builds_ms.iter().map(|ms| format!("{ms:.0}")).collect();
                window_row(
                    &mut out,
                    &format!("snapshots built back to back ({})", s.builds_ms.len()),
                    during,
                );
                let _ = writeln!(out, "snapshot builds (ms): {}", builds.join(" "));
                if let Some(ratio) = s.p99_ratio {
                    let _ = writeln!(
                        out,
                        "p99 while building / without: {ratio:.3}  (target <= 2: {})",
                        if ratio <= 2.0 { "met" } else { "missed" }
                    );
                }
            }
            None => {
                let _ = writeln!(out, "snapshot endpoint not available");
            }
        }
        if let Some(error) = &s.error {
            let _ = writeln!(out, "snapshot request failed: {error}");
        }

        match &self.restarts {
            Some(restarts) => {
                let _ = writeln!(
                    out,
                    "\nrestart on the same data directory and ports: spawn -> first GET of {} \
                     answered with its bytes",
                    self.last_file
                );
                for r in restarts {
                    let _ = writeln!(
                        out,
                        "{:<44} {:>10.1} ms  (stopped {:.0} ms after the signal)",
                        format!("after {}", r.signal),
                        r.first_get_ms,
                        r.stop_ms
                    );
                }
            }
            None => {
                let _ = writeln!(out, "\nrestart: {}", self.missing("restart"));
            }
        }

        match &self.npm {
            Some(n) => {
                let l = &n.latency;
                let _ = writeln!(
                    out,
                    "\nnpm: {} with {} versions published in {:.1} s ({:.0}/s, {} publishers, {} \
                     conflicts retried); abbreviated packument {} bytes ({})",
                    n.package,
                    n.versions,
                    n.publish_seconds,
                    n.versions as f64 / n.publish_seconds.max(1e-9),
                    n.publishers,
                    n.conflicts_retried,
                    n.packument_bytes,
                    n.content_type
                );
                let _ = writeln!(
                    out,
                    "abbreviated packument GETs, {} readers x {:.0} s: {:.0} req/s  p50 {:.2} ms  \
                     p99 {:.2} ms  max {:.2} ms  (target >= 1000/s: {})",
                    n.readers,
                    n.seconds,
                    n.per_s,
                    l.p50_ms,
                    l.p99_ms,
                    l.max_ms,
                    if n.per_s >= 1000.0 { "met" } else { "missed" }
                );
            }
            None => {
                let _ = writeln!(out, "\nnpm: {}", self.missing("npm"));
            }
        }

        match &self.catch_up {
            Some(c) => {
                let seconds =
                    |s: Option<f64>| s.map_or_else(|| "never".to_owned(), |s| format!("{s:.1} s"));
                let _ = writeln!(
                    out,
                    "\nsecond node (site-2) joining with {} versions stored: caught up ({}) in \
                     {:.1} s  (target <= 120 s at 1,000,000 versions)",
                    self.versions_stored, c.by, c.seconds
                );
                let _ = writeln!(
                    out,
                    "lag 0 after {}; last file served by node 2 after {}; node 2 is a {}",
                    seconds(c.lag_zero_s),
                    seconds(c.readable_s),
                    c.membership
                );
                let _ = writeln!(
                    out,
                    "peak RSS during the catch-up (sampled): node 1 {:.0} MiB, node 2 {:.0} MiB \
                     (node 2 VmHWM {:.0} MiB)",
                    c.node1_peak_rss_mib, c.node2_peak_rss_mib, c.node2_hwm_mib
                );
            }
            None => {
                let _ = writeln!(out, "\nsecond node: {}", self.missing("second node"));
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        for error in &self.errors {
            let _ = writeln!(out, "FAILED: {error}");
        }
        out
    }

    /// Why a step has no figures: skipped as asked, or failed.
    fn missing(&self, step: &str) -> &'static str {
        if self.skipped.contains(&step) {
            "skipped"
        } else {
            "failed (see below)"
        }
    }
}

/// Appends one window of pushes to the snapshot section.
fn window_row(out: &mut String, label: &str, w: &PushWindow) {
    let (p50, p99, max) = w
        .latency
        .as_ref()
        .map_or((f64::NAN, f64::NAN, f64::NAN), |l| {
            (l.p50_ms, l.p99_ms, l.max_ms)
        });
    let _ = writeln!(
        out,
        "{label:<44} {:>8} {:>9.0} {:>8.2} {:>8.2} {:>8.1}",
        w.pushes, w.pushes_per_s, p50, p99, max
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_and_median_of_runs() {
        let mib = 1024 * 1024;
        let runs = [
            Duration::from_secs(4),
            Duration::from_secs(1),
            Duration::from_secs(2),
        ];
        let m = Measurement::new("x", 100 * mib, &runs).expect("runs");
        assert_eq!(m.mib_per_s, vec![25.0, 100.0, 50.0]);
        assert_eq!(m.best_mib_per_s, 100.0);
        assert_eq!(m.median_mib_per_s, 50.0);

        let even = Measurement::new("y", 100 * mib, &runs[..2]).expect("runs");
        assert_eq!(even.median_mib_per_s, 62.5);
        assert!(Measurement::new("z", mib, &[]).is_none());

        let c = Compared::new(even, &m);
        assert_eq!(c.ratio_best, 1.0);
        assert_eq!(c.ratio_median, 1.25);
    }

    #[test]
    fn side_by_side_ratios() {
        let arca = Rates::new(vec![300.0, 100.0, 200.0]).expect("runs");
        assert_eq!((arca.best, arca.median), (300.0, 200.0));
        let peer = Rates::new(vec![150.0, 50.0]).expect("runs");
        assert_eq!((peer.best, peer.median), (150.0, 100.0));
        assert!(Rates::new(Vec::new()).is_none());
        let m = SideBySide::new("push", "MiB/s", arca, peer);
        assert_eq!((m.ratio_best, m.ratio_median), (2.0, 2.0));
    }

    #[test]
    fn spread_of_runs() {
        let s = Spread::new(vec![3.0, 1.0, 2.0]).expect("runs");
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(s.cell(1), "2.0 (1.0-3.0)");
        assert!(Spread::new(Vec::new()).is_none());
        let f = DebianFigure::new("x", "ms", s.clone(), Some(s));
        assert_eq!(f.ratio_median, Some(1.0));
    }

    #[test]
    fn latency_percentiles() {
        assert_eq!(percentile(&[], 99.0), None);
        assert_eq!(percentile(&[7], 50.0), Some(7));
        let hundred: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&hundred, 50.0), Some(50));
        assert_eq!(percentile(&hundred, 99.0), Some(99));
        assert_eq!(percentile(&hundred, 100.0), Some(100));
        let l = Latency::from_micros((1..=1000).rev().map(|us| us * 1000).collect()).expect("some");
        assert_eq!(l.requests, 1000);
        assert_eq!((l.p50_ms, l.p99_ms, l.max_ms), (500.0, 990.0, 1000.0));
        assert!(Latency::from_micros(Vec::new()).is_none());
    }
}
