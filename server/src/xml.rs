//! Just enough XML for S3's answers and requests: element texts, and escaping.

/// The text of the first `<name>` element in `xml`.
pub fn xml_text<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    xml_texts(xml, name).first().copied()
}

/// The texts of every `<name>` element in `xml`, in order.
pub fn xml_texts<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    xml.split(open.as_str()).skip(1).filter_map(|rest| rest.split(close.as_str()).next()).collect()
}

/// `text` with XML's special characters escaped.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_texts_are_read_in_order() {
        let xml = "<A><Part><C>x</C></Part><Part><C>y</C></Part></A>";
        assert_eq!(xml_texts(xml, "C"), ["x", "y"]);
        assert_eq!(xml_text(xml, "C"), Some("x"));
        assert_eq!(xml_text(xml, "B"), None);
        assert_eq!(escape("\"a\"&<b>"), "\"a\"&amp;&lt;b&gt;");
    }
}
