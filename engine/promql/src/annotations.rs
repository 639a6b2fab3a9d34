//! Warnings and infos a query collects, as Prometheus words them, each kept once.

/// Warnings and infos, each kept once in the order first raised.
#[derive(Debug, Default)]
pub(crate) struct Annotations {
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

impl Annotations {
    pub fn warn(&mut self, text: String) {
        let text = format!("PromQL warning: {text}");
        if !self.warnings.contains(&text) {
            self.warnings.push(text);
        }
    }

    pub fn info(&mut self, text: String) {
        let text = format!("PromQL info: {text}");
        if !self.infos.contains(&text) {
            self.infos.push(text);
        }
    }
}
