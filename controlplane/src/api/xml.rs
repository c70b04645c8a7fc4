//! A small escaping XML writer for AWS's Query-protocol response shapes.
//!
//! The shapes are fixed and flat enough that a writer of elements beats a
//! serializer: handlers write `<groupId>`, `<item>` lists and `<return>`
//! exactly as botocore's model names them, and every text is escaped here,
//! once, so no client-chosen description can break the document.

use core::fmt::{Display, Write as _};

/// The EC2 namespace every EC2 response declares.
pub const EC2_NAMESPACE: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// The STS namespace `GetCallerIdentity` answers in.
pub const STS_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// A response document under construction.
#[derive(Debug, Default)]
pub struct Xml {
    out: String,
}

impl Xml {
    /// An empty document body (the dispatcher adds the envelope).
    pub fn new() -> Self {
        Self::default()
    }

    /// `<tag>`.
    pub fn open(&mut self, tag: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(tag);
        self.out.push('>');
        self
    }

    /// `</tag>`.
    pub fn close(&mut self, tag: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push('>');
        self
    }

    /// `<tag>value</tag>`, the value escaped.
    pub fn leaf(&mut self, tag: &str, value: impl Display) -> &mut Self {
        self.open(tag);
        let mut text = String::new();
        let _ = write!(text, "{value}");
        escape_into(&mut self.out, &text);
        self.close(tag)
    }

    /// [`Xml::leaf`] when `value` is present; nothing otherwise (AWS omits
    /// absent members rather than sending them empty).
    pub fn leaf_opt<T: Display>(&mut self, tag: &str, value: Option<T>) -> &mut Self {
        if let Some(value) = value {
            self.leaf(tag, value);
        }
        self
    }

    /// `<tag>` … `</tag>` around whatever `body` writes.
    pub fn element(&mut self, tag: &str, body: impl FnOnce(&mut Self)) -> &mut Self {
        self.open(tag);
        body(self);
        self.close(tag)
    }

    /// `<tag><item>…</item>…</tag>`: AWS's list shape, one `<item>` per
    /// element, written by `each`. An empty list is `<tag/>`-equivalent.
    pub fn list<T>(
        &mut self,
        tag: &str,
        items: impl IntoIterator<Item = T>,
        mut each: impl FnMut(&mut Self, T),
    ) -> &mut Self {
        self.open(tag);
        for item in items {
            self.open("item");
            each(self, item);
            self.close("item");
        }
        self.close(tag)
    }

    /// `<return>true</return>`, the answer of most mutating actions.
    pub fn return_true(&mut self) -> &mut Self {
        self.leaf("return", "true")
    }

    /// The body written so far.
    pub fn as_str(&self) -> &str {
        &self.out
    }

    /// Wraps the body in `<{action}Response xmlns=…><requestId>…` (EC2's
    /// envelope).
    pub fn ec2_envelope(&self, action: &str, request_id: &str) -> String {
        let mut doc = String::with_capacity(self.out.len() + 160);
        let _ = write!(
            doc,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{EC2_NAMESPACE}\"><requestId>"
        );
        escape_into(&mut doc, request_id);
        doc.push_str("</requestId>");
        doc.push_str(&self.out);
        let _ = write!(doc, "</{action}Response>");
        doc
    }

    /// Wraps the body in STS's envelope: `<{action}Response><{action}Result>…
    /// </{action}Result><ResponseMetadata><RequestId>…`.
    pub fn sts_envelope(&self, action: &str, request_id: &str) -> String {
        let mut doc = String::with_capacity(self.out.len() + 240);
        let _ = write!(
            doc,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{STS_NAMESPACE}\"><{action}Result>"
        );
        doc.push_str(&self.out);
        let _ = write!(doc, "</{action}Result><ResponseMetadata><RequestId>");
        escape_into(&mut doc, request_id);
        let _ = write!(doc, "</RequestId></ResponseMetadata></{action}Response>");
        doc
    }
}

/// EC2's error document.
pub fn ec2_error(code: &str, message: &str, request_id: &str) -> String {
    let mut doc = String::with_capacity(message.len() + 200);
    doc.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>");
    escape_into(&mut doc, code);
    doc.push_str("</Code><Message>");
    escape_into(&mut doc, message);
    doc.push_str("</Message></Error></Errors><RequestID>");
    escape_into(&mut doc, request_id);
    doc.push_str("</RequestID></Response>");
    doc
}

/// STS's error document (botocore's query protocol reads this shape).
pub fn sts_error(code: &str, message: &str, request_id: &str, sender: bool) -> String {
    let mut doc = String::with_capacity(message.len() + 240);
    let _ = write!(
        doc,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"{STS_NAMESPACE}\"><Error><Type>{}</Type><Code>",
        if sender { "Sender" } else { "Receiver" }
    );
    escape_into(&mut doc, code);
    doc.push_str("</Code><Message>");
    escape_into(&mut doc, message);
    doc.push_str("</Message></Error><RequestId>");
    escape_into(&mut doc, request_id);
    doc.push_str("</RequestId></ErrorResponse>");
    doc
}

/// Escapes the five XML specials, and drops characters XML 1.0 cannot carry
/// at all (control characters other than tab, newline, carriage return),
/// so that any client-supplied text yields a well-formed document.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_lists_use_items() {
        let mut xml = Xml::new();
        xml.leaf("groupName", "a<b>&\"c'\u{1}")
            .list("groupSet", ["sg-1", "sg-2"], |x, id| {
                x.leaf("groupId", id);
            })
            .leaf_opt::<&str>("absent", None)
            .return_true();
        assert_eq!(
            xml.as_str(),
            "<groupName>a&lt;b&gt;&amp;&quot;c&apos;</groupName>\
             <groupSet><item><groupId>sg-1</groupId></item><item><groupId>sg-2</groupId></item></groupSet>\
             <return>true</return>"
        );
    }

    #[test]
    fn envelopes_carry_namespace_and_request_id() {
        let mut xml = Xml::new();
        xml.return_true();
        let doc = xml.ec2_envelope("DeleteVpc", "req-1");
        assert!(doc.contains(
            "<DeleteVpcResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>req-1</requestId><return>true</return></DeleteVpcResponse>"
        ));
        let err = ec2_error("InvalidAction", "x & y", "req-2");
        assert!(err.ends_with(
            "<Response><Errors><Error><Code>InvalidAction</Code><Message>x &amp; y</Message></Error></Errors><RequestID>req-2</RequestID></Response>"
        ));
    }
}
