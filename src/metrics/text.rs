//! The Prometheus text exposition format, version 0.0.4: `# HELP`, `# TYPE`, then one line per
//! sample, `name{label="value",...} number`. Pure string building, no I/O.

use std::fmt::Write;

use super::{Histogram, HistogramVec};

#[derive(Debug, Default)]
pub struct Page {
    out: String,
}

impl Page {
    pub fn new() -> Page {
        Page::default()
    }

    /// Starts a metric family: `kind` is `counter`, `gauge` or `histogram`.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.out, "{k}=\"{v}\"");
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(value));
    }

    /// A whole family of one gauge or counter without labels.
    pub fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// A histogram family: `name_bucket{le=...}`, `name_sum`, `name_count`.
    pub fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        self.family(name, "histogram", help);
        self.histogram_samples(name, &[], h.snapshot());
    }

    /// A histogram family with labels (`names`), one histogram per label values seen.
    pub fn histogram_vec(&mut self, name: &str, help: &str, names: &[&str], h: &HistogramVec) {
        self.family(name, "histogram", help);
        for (values, snapshot) in h.snapshot() {
            let labels: Vec<(&str, &str)> = names
                .iter()
                .copied()
                .zip(values.iter().map(String::as_str))
                .collect();
            self.histogram_samples(name, &labels, snapshot);
        }
    }

    fn histogram_samples(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        (buckets, sum, count): (Vec<(f64, u64)>, f64, u64),
    ) {
        let bucket = format!("{name}_bucket");
        let les = buckets
            .iter()
            .map(|(bound, n)| (number(*bound), *n))
            .chain([("+Inf".to_owned(), count)]);
        for (le, n) in les {
            let mut l = labels.to_vec();
            l.push(("le", &le));
            self.sample(&bucket, &l, n as f64);
        }
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, count as f64);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// Integers without a fraction, others as Rust prints them (Go's parser reads both).
fn number(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if v.is_nan() {
        return "NaN".into();
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_numbers_are_plain() {
        let mut p = Page::new();
        p.family("x_total", "counter", "A \\ help\nline");
        p.sample("x_total", &[("device", "a\"b\\c\nd"), ("role", "r")], 3.0);
        p.sample("y_seconds", &[], 0.25);
        assert_eq!(
            p.finish(),
            "# HELP x_total A \\\\ help\\nline\n# TYPE x_total counter\n\
             x_total{device=\"a\\\"b\\\\c\\nd\",role=\"r\"} 3\ny_seconds 0.25\n"
        );
    }

    #[test]
    fn a_histogram_ends_with_inf_sum_and_count() {
        let h = Histogram::new(&[0.5]);
        h.observe(std::time::Duration::from_millis(100));
        h.observe(std::time::Duration::from_secs(2));
        let mut p = Page::new();
        p.histogram("c_seconds", "commits", &h);
        let text = p.finish();
        assert!(text.contains("c_seconds_bucket{le=\"0.5\"} 1\n"), "{text}");
        assert!(text.contains("c_seconds_bucket{le=\"+Inf\"} 2\n"), "{text}");
        assert!(text.contains("c_seconds_sum 2.1\n"), "{text}");
        assert!(text.contains("c_seconds_count 2\n"), "{text}");
    }

    #[test]
    fn a_labelled_histogram_has_each_label_set_on_every_line() {
        let h = HistogramVec::new(&[0.001]);
        h.observe(&["sim", "pay"], std::time::Duration::from_micros(200));
        h.observe(&["sim", "pay"], std::time::Duration::from_micros(600));
        h.observe(&["sim", "refund"], std::time::Duration::from_secs(3));
        let mut p = Page::new();
        p.histogram_vec("b_seconds", "calls", &["provider", "action"], &h);
        let text = p.finish();
        for line in [
            "b_seconds_bucket{provider=\"sim\",action=\"pay\",le=\"0.001\"} 2\n",
            "b_seconds_bucket{provider=\"sim\",action=\"pay\",le=\"+Inf\"} 2\n",
            "b_seconds_sum{provider=\"sim\",action=\"pay\"} 0.0008\n",
            "b_seconds_count{provider=\"sim\",action=\"pay\"} 2\n",
            "b_seconds_bucket{provider=\"sim\",action=\"refund\",le=\"0.001\"} 0\n",
            "b_seconds_count{provider=\"sim\",action=\"refund\"} 1\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        assert_eq!(text.matches("# TYPE b_seconds histogram").count(), 1);
    }
}
