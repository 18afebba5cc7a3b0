//! Output of a `rest` run: one JSON line for stdout and a human summary for stderr.

use serde_json::{Value, json};

use crate::cli::Op;
use crate::hist::Histogram;
use crate::worker::Stats;

/// Everything a finished `rest` run reports.
pub struct RestRun {
    pub op: Op,
    pub concurrency: u32,
    pub duration_s: u64,
    pub warmup_s: u64,
    pub preload: Option<u32>,
    pub base: String,
    pub model: String,
    pub stats: Stats,
}

impl RestRun {
    /// Successful (2xx) requests per second of the measured window.
    pub fn rps(&self) -> f64 {
        self.stats.ok as f64 / self.duration_s.max(1) as f64
    }
}

/// Percentile in milliseconds with microsecond precision (`None` when nothing was recorded).
pub(crate) fn pct_ms(h: &Histogram, p: f64) -> Option<f64> {
    h.percentile_us(p).map(us_to_ms)
}

fn us_to_ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

pub(crate) fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

/// `{"scenario":"rest","op":..,"concurrency":..,"duration_s":..,"requests":..,"errors":..,
/// "rps":..,"p50_ms":..,"p90_ms":..,"p99_ms":..,"max_ms":..}` followed by details.
pub fn rest_json(run: &RestRun) -> Value {
    let h = &run.stats.hist;
    json!({
        "scenario": "rest",
        "op": run.op.as_str(),
        "concurrency": run.concurrency,
        "duration_s": run.duration_s,
        "requests": run.stats.ok,
        "errors": run.stats.errors(),
        "rps": round(run.rps(), 1),
        "p50_ms": pct_ms(h, 50.0),
        "p90_ms": pct_ms(h, 90.0),
        "p99_ms": pct_ms(h, 99.0),
        "max_ms": h.max_us().map(us_to_ms),
        "mean_ms": h.mean_us().map(|us| round(us / 1000.0, 3)),
        "non_2xx": run.stats.non_2xx,
        "transport_errors": run.stats.transport_errors,
        "first_error": run.stats.first_error,
        "warmup_s": run.warmup_s,
        "preload": run.preload,
        "base": run.base,
        "model": run.model,
    })
}

pub fn rest_human(run: &RestRun) -> String {
    let h = &run.stats.hist;
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
    format!(
        "[jxp-bench rest {} {}] c={} {}s (+{}s warm-up): {} ok, {} errors ({} non-2xx, {} transport), \
         {:.0} req/s, latency ms p50 {} p90 {} p99 {} max {}",
        run.op.as_str(),
        run.model,
        run.concurrency,
        run.duration_s,
        run.warmup_s,
        run.stats.ok,
        run.stats.errors(),
        run.stats.non_2xx,
        run.stats.transport_errors,
        run.rps(),
        ms(pct_ms(h, 50.0)),
        ms(pct_ms(h, 90.0)),
        ms(pct_ms(h, 99.0)),
        ms(h.max_us().map(us_to_ms)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_has_the_expected_fields_in_order() {
        let mut stats = Stats::default();
        for us in [1_000, 2_000, 3_000, 40_000] {
            stats.hist.record_us(us);
            stats.ok += 1;
        }
        // 2 ms falls in the 8 µs wide bucket [2000, 2007]; its midpoint is reported.
        stats.non_2xx = 1;
        stats.transport_errors = 2;
        let run = RestRun {
            op: Op::Get,
            concurrency: 32,
            duration_s: 2,
            warmup_s: 1,
            preload: Some(100),
            base: "http://127.0.0.1:4001".into(),
            model: "test".into(),
            stats,
        };
        let line = rest_json(&run).to_string();
        assert!(
            line.starts_with(
                r#"{"scenario":"rest","op":"get","concurrency":32,"duration_s":2,"requests":4,"errors":3,"rps":2.0,"p50_ms":2.003,"p90_ms":40.0,"p99_ms":40.0,"max_ms":40.0,"#
            ),
            "{line}"
        );
        assert!(!line.contains('\n'));
        assert!(rest_human(&run).contains("4 ok, 3 errors (1 non-2xx, 2 transport)"));
    }
}
