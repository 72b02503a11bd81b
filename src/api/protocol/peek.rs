//! What can be read of a request that will not be parsed: the start of a line over
//! [`super::MAX_LINE`], or the first line on a connection that is refused (busy,
//! unauthorized). Only the top-level `action` and `request_id` strings of a JSON object that
//! may be cut anywhere: enough to answer in the shape the request asked for (the LIFE POS
//! contract's, when its action is readable) and to echo its id. Never acted on.

/// The echo fields found, each `None` when absent, not a string, or cut off.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Peeked {
    pub action: Option<String>,
    pub request_id: Option<String>,
}

/// Reads the top-level `action` and `request_id` of the (possibly cut) JSON object in `line`.
pub fn peek(line: &[u8]) -> Peeked {
    let mut found = Peeked::default();
    let mut s = Scan { b: line, i: 0 };
    s.ws();
    if !s.eat(b'{') {
        return found;
    }
    loop {
        s.ws();
        let Some(key) = s.string() else {
            return found;
        };
        s.ws();
        if !s.eat(b':') {
            return found;
        }
        s.ws();
        let start = s.i;
        if !s.value() {
            return found;
        }
        let value = || serde_json::from_slice::<String>(&line[start..s.i]).ok();
        match key {
            b"\"action\"" if found.action.is_none() => found.action = value(),
            b"\"request_id\"" if found.request_id.is_none() => found.request_id = value(),
            _ => {}
        }
        s.ws();
        if !s.eat(b',') {
            return found;
        }
    }
}

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    fn ws(&mut self) {
        while self.b.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        let ok = self.b.get(self.i) == Some(&c);
        self.i += usize::from(ok);
        ok
    }

    /// A whole string literal, quotes included; `None` when there is none here or it is cut.
    fn string(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        if !self.eat(b'"') {
            return None;
        }
        while let Some(&c) = self.b.get(self.i) {
            self.i += 1;
            match c {
                b'\\' => self.i += 1,
                b'"' => return Some(&self.b[start..self.i]),
                _ => {}
            }
        }
        None
    }

    /// Skips one whole value; `false` when it is cut off (or not JSON).
    fn value(&mut self) -> bool {
        match self.b.get(self.i) {
            Some(b'"') => self.string().is_some(),
            Some(b'{' | b'[') => {
                let mut depth = 0usize;
                while let Some(&c) = self.b.get(self.i) {
                    match c {
                        b'"' => {
                            if self.string().is_none() {
                                return false;
                            }
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return true;
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
                false
            }
            Some(_) => {
                let start = self.i;
                while self
                    .b
                    .get(self.i)
                    .is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace())
                {
                    self.i += 1;
                }
                self.i > start && self.i < self.b.len()
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_level_echo_fields_are_read_from_a_cut_line() {
        let line = br#"{"metadata": {"action": "no", "request_id": "inner"}, "request_id": "bad id!", "amount": 5, "note": "a \" b", "action": "ru.lifepay.checkout.payment_terminal.transaction.pay", "params": {"x": "yyyyyyyy"#;
        assert_eq!(
            peek(line),
            Peeked {
                action: Some("ru.lifepay.checkout.payment_terminal.transaction.pay".into()),
                request_id: Some("bad id!".into()),
            }
        );
        // Cut inside the action's value: it is not guessed.
        assert_eq!(peek(br#"{"request_id":"r1","action":"ru.lif"#).action, None);
        assert_eq!(
            peek(br#"{"request_id":"r1","action":"ru.lif"#).request_id,
            Some("r1".into())
        );
        // Not an object, or the fields are not strings: nothing.
        assert_eq!(peek(b"[1,2]"), Peeked::default());
        assert_eq!(
            peek(br#"{"action": 5, "request_id": null}"#),
            Peeked::default()
        );
        assert_eq!(peek(b""), Peeked::default());
    }
}
