//! One measured figure, and the table the suite prints.

use serde::Serialize;
use tractor_host::spawn::Backend;

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// What was measured.
    pub name: &'static str,
    /// The spawn backend, for figures that depend on one.
    pub backend: Option<Backend>,
    /// The median measurement.
    pub value: f64,
    /// Its unit.
    pub unit: &'static str,
    /// The same-run baseline, in the same unit.
    pub baseline: Option<f64>,
    /// `value / baseline`.
    pub ratio: Option<f64>,
    /// The goal, e.g. `<= 5 ms`.
    pub floor: Option<String>,
    /// Whether the goal was met.
    pub meets: Option<bool>,
}

/// A goal for a figure: at most or at least a value.
#[derive(Clone, Copy)]
pub(crate) enum Floor {
    AtMost(f64),
    AtLeast(f64),
}

impl Figure {
    pub(crate) fn new(name: &'static str, backend: Option<Backend>, value: f64, unit: &'static str) -> Figure {
        Figure { name, backend, value, unit, baseline: None, ratio: None, floor: None, meets: None }
    }

    pub(crate) fn against(mut self, baseline: f64) -> Figure {
        self.baseline = Some(baseline);
        self.ratio = Some(self.value / baseline);
        self
    }

    pub(crate) fn floor(mut self, floor: Option<Floor>) -> Figure {
        if let Some(f) = floor {
            let (text, ok) = match f {
                Floor::AtMost(x) => (format!("<= {} {}", round(x), self.unit), self.value <= x),
                Floor::AtLeast(x) => (format!(">= {} {}", round(x), self.unit), self.value >= x),
            };
            self.floor = Some(text);
            self.meets = Some(ok);
        }
        self
    }

    /// The figure as one row of the table (see [`table_header`]).
    pub fn row(&self) -> String {
        let num = |v: f64| if v >= 1000.0 { format!("{v:.0}") } else { format!("{v:.3}") };
        format!(
            "{:<46} {:<10} {:>12} {:<5} {:>12} {:>9} {:<16} {}",
            self.name,
            self.backend.map_or("-".to_string(), |b| b.to_string()),
            num(self.value),
            self.unit,
            self.baseline.map_or("-".into(), num),
            self.ratio.map_or("-".into(), |r| format!("{r:.2}x")),
            self.floor.as_deref().unwrap_or("-"),
            match self.meets {
                Some(true) => "ok",
                Some(false) => "BELOW",
                None => "",
            }
        )
    }
}

/// The header line for [`Figure::row`].
pub fn table_header() -> String {
    format!(
        "{:<46} {:<10} {:>12} {:<5} {:>12} {:>9} {:<16} {}",
        "figure", "backend", "value", "unit", "baseline", "ratio", "floor", "goal"
    )
}

/// A floor as people write it: 38.6, not 38.6003397.
pub(crate) fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
