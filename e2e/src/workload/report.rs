//! The workload's report: every figure it observed, printed as one block.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::ErrorCounts;
use super::check::Verdict;

/// Everything the workload observed, printed as one block.
#[derive(Debug, Clone)]
pub struct Report {
    pub topic: String,
    pub partitions: i32,
    pub duration: Duration,
    pub produced_for: Duration,
    pub sent: u64,
    pub acknowledged: u64,
    pub failed: u64,
    pub consumed: u64,
    /// The final read reached every partition's last acknowledged offset before its deadline.
    pub drain_complete: bool,
    /// High watermark of every partition when the final read began.
    pub high_watermarks: BTreeMap<i32, i64>,
    /// Records the live consumer read while the workload ran.
    pub live_consumed: u64,
    pub live_drain_complete: bool,
    /// The next offset the live consumer would have read per partition, when it stopped.
    pub live_positions: BTreeMap<i32, i64>,
    /// Live consumers replaced because librdkafka stopped working in them.
    pub live_restarts: u32,
    /// The live consumer's newest librdkafka debug lines, kept when it fell short.
    pub live_trace: Vec<String>,
    /// The last acknowledged offset per partition.
    pub targets: BTreeMap<i32, i64>,
    pub verdict: Verdict,
    /// Longest time without an acknowledgement while producing, and when it began.
    pub longest_stall: Duration,
    pub longest_stall_at: Duration,
    /// Failed deliveries by error kind.
    pub delivery_errors: ErrorCounts,
    /// Sends refused before queueing, by kind.
    pub send_errors: ErrorCounts,
    /// Errors librdkafka reported outside deliveries (connections, brokers down), by kind.
    pub client_errors: ErrorCounts,
    /// Errors of the live consumer and of the final read, by kind.
    pub consumer_errors: ErrorCounts,
    pub final_read_errors: ErrorCounts,
}

impl Report {
    pub fn lost(&self) -> u64 {
        self.verdict.lost
    }

    pub fn duplicated(&self) -> u64 {
        self.verdict.duplicated
    }

    pub fn out_of_order(&self) -> u64 {
        self.verdict.out_of_order
    }

    /// Fails, with the whole report, unless at least `min_acknowledged` records were
    /// acknowledged, both the live consumer and the final read reached them all, and nothing
    /// was lost, moved, duplicated, reordered or seen and then gone.
    pub fn ensure_clean(&self, min_acknowledged: u64) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.acknowledged >= min_acknowledged,
            "only {} records acknowledged, expected at least {min_acknowledged}\n{self}",
            self.acknowledged
        );
        anyhow::ensure!(
            self.verdict.is_clean(),
            "acknowledged records were lost, moved, duplicated or reordered\n{self}"
        );
        anyhow::ensure!(
            self.drain_complete,
            "the final read did not reach the last acknowledged offsets\n{self}"
        );
        // Failover must not stop a consumer: it never reads past the high watermark, so a new
        // leader never answers it OFFSET_OUT_OF_RANGE.
        anyhow::ensure!(
            self.live_drain_complete,
            "the live consumer did not reach the last acknowledged offsets\n{self}"
        );
        Ok(())
    }
}

fn counts(counts: &ErrorCounts) -> String {
    if counts.is_empty() {
        return "none".to_owned();
    }
    counts
        .iter()
        .map(|(kind, n)| format!("{kind} x{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = &self.verdict;
        writeln!(
            f,
            "workload report: topic {} ({} partitions), produced for {:.1?}, total {:.1?}",
            self.topic, self.partitions, self.produced_for, self.duration
        )?;
        writeln!(f, "  sent                {}", self.sent)?;
        writeln!(f, "  acknowledged        {}", self.acknowledged)?;
        writeln!(f, "  failed deliveries   {}", self.failed)?;
        let drained = |complete| if complete { "complete" } else { "INCOMPLETE" };
        writeln!(
            f,
            "  consumed            {} in the final read ({}), {} live ({})",
            self.consumed,
            drained(self.drain_complete),
            self.live_consumed,
            drained(self.live_drain_complete)
        )?;
        writeln!(f, "  high watermarks     {:?}", self.high_watermarks)?;
        if self.live_restarts > 0 {
            writeln!(
                f,
                "  live restarts       {} (a live consumer showed no fetch or metadata activity \
                 for 10 s: stuck in librdkafka, replaced from its positions)",
                self.live_restarts
            )?;
        }
        if !self.live_drain_complete {
            writeln!(f, "  last acknowledged   {:?}", self.targets)?;
            writeln!(f, "  live positions      {:?}", self.live_positions)?;
        }
        writeln!(f, "  lost                {}", v.lost)?;
        writeln!(f, "  duplicated          {}", v.duplicated)?;
        writeln!(f, "  out of order        {}", v.out_of_order)?;
        writeln!(f, "  offset mismatches   {}", v.offset_mismatches)?;
        writeln!(f, "  conflicting offsets {}", v.conflicting_offsets)?;
        writeln!(f, "  vanished after read {}", v.vanished)?;
        writeln!(f, "  misplaced / foreign {} / {}", v.misplaced, v.foreign)?;
        writeln!(f, "  failed but written  {}", v.failed_but_written)?;
        writeln!(
            f,
            "  longest stall       {:.2?} (from {:.2?})",
            self.longest_stall, self.longest_stall_at
        )?;
        writeln!(f, "  delivery errors     {}", counts(&self.delivery_errors))?;
        writeln!(f, "  send errors         {}", counts(&self.send_errors))?;
        writeln!(f, "  client errors       {}", counts(&self.client_errors))?;
        writeln!(f, "  consumer errors     {}", counts(&self.consumer_errors))?;
        write!(
            f,
            "  final read errors   {}",
            counts(&self.final_read_errors)
        )?;
        if !v.lost_examples.is_empty() {
            write!(
                f,
                "\n  lost (partition, sequence, acked offset): {:?}",
                v.lost_examples
            )?;
        }
        if !v.duplicate_examples.is_empty() {
            write!(
                f,
                "\n  duplicated (partition, sequence, offsets): {:?}",
                v.duplicate_examples
            )?;
        }
        if !self.live_trace.is_empty() {
            write!(
                f,
                "\n  live consumer log (newest {} lines):",
                self.live_trace.len()
            )?;
            for line in &self.live_trace {
                write!(f, "\n    {line}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::check::check;
    use crate::workload::check::fixtures::clean;

    #[test]
    fn the_report_names_every_figure() {
        let (a, c) = clean();
        let report = Report {
            topic: "t".to_owned(),
            partitions: 2,
            duration: Duration::from_secs(2),
            produced_for: Duration::from_secs(1),
            sent: 6,
            acknowledged: 6,
            failed: 0,
            consumed: 6,
            drain_complete: true,
            high_watermarks: [(0, 3), (1, 3)].into(),
            live_consumed: 6,
            live_drain_complete: true,
            live_positions: [(0, 3), (1, 3)].into(),
            live_restarts: 0,
            live_trace: Vec::new(),
            targets: [(0, 2), (1, 2)].into(),
            verdict: check(&a, &[], &c),
            longest_stall: Duration::from_millis(500),
            longest_stall_at: Duration::ZERO,
            delivery_errors: ErrorCounts::new(),
            send_errors: ErrorCounts::new(),
            client_errors: [("AllBrokersDown".to_owned(), 2)].into(),
            consumer_errors: ErrorCounts::new(),
            final_read_errors: ErrorCounts::new(),
        };
        let text = report.to_string();
        for figure in [
            "acknowledged        6",
            "lost                0",
            "duplicated          0",
            "out of order        0",
            "longest stall",
            "AllBrokersDown x2",
        ] {
            assert!(text.contains(figure), "{figure:?} in\n{text}");
        }
        assert!(report.ensure_clean(6).is_ok());
        assert!(report.ensure_clean(7).is_err());
    }
}
