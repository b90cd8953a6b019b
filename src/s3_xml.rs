//! The few S3 XML documents the uploader and the reference server read and write: element
//! texts, the CompleteMultipartUpload body, and ListParts pages (pure).

use crate::checksum::ChecksumAlgorithm;
use crate::upload::{CompletedPart, ListedPart};

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

/// `text` with the entities S3 writes (`&quot;` in ETags, ...) resolved.
pub fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"").replace("&apos;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// The CompleteMultipartUpload body: each part's number and ETag, and with `algorithm` (but MD5,
/// which has no element) its checksum. `None` when a part lacks the checksum it needs.
pub fn complete_multipart_body(parts: &[CompletedPart], algorithm: Option<ChecksumAlgorithm>) -> Option<String> {
    let mut body = String::from("<CompleteMultipartUpload>");
    for part in parts {
        body.push_str(&format!(
            "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag>",
            part.part_number,
            escape(&part.etag)
        ));
        if let Some(algorithm) = algorithm.filter(|&a| a != ChecksumAlgorithm::Md5) {
            let element = format!("Checksum{}", algorithm.as_str());
            body.push_str(&format!("<{element}>{}</{element}>", escape(part.checksum.as_deref()?)));
        }
        body.push_str("</Part>");
    }
    body.push_str("</CompleteMultipartUpload>");
    Some(body)
}

/// One page of a ListParts answer: its parts, and where the next page starts when truncated.
/// Only what resuming needs is read (s3s-fs, for one, leaves out `<MaxParts>`).
pub fn list_parts_page(body: &str) -> Option<(Vec<ListedPart>, Option<u32>)> {
    let mut parts = Vec::new();
    for block in xml_texts(body, "Part") {
        let part_number = xml_text(block, "PartNumber")?.parse().ok()?;
        let etag = unescape(xml_text(block, "ETag")?);
        let size = xml_text(block, "Size")?.parse().ok()?;
        parts.push(ListedPart { part_number, etag, size });
    }
    let truncated = xml_text(body, "IsTruncated") == Some("true");
    let next = xml_text(body, "NextPartNumberMarker").and_then(|m| m.parse().ok()).filter(|_| truncated);
    Some((parts, next))
}

/// Most ListParts pages read for one upload: its 10,000 parts at S3's 1,000 a page, and one more.
pub const MAX_LIST_PARTS_PAGES: usize = 11;

/// Every part a store lists for an upload, reading page after page: `page(marker)` fetches the
/// page after `marker` (`None` for the first), `unreadable()` is the error for an answer that is
/// not a ListParts page. The page bound keeps a misbehaving store from looping the caller.
pub async fn all_listed_parts<E, F, Fut>(mut page: F, unreadable: impl Fn() -> E) -> Result<Vec<ListedPart>, E>
where
    F: FnMut(Option<u32>) -> Fut,
    Fut: std::future::Future<Output = Result<String, E>>,
{
    let mut parts = Vec::new();
    let mut marker = None;
    for _ in 0..MAX_LIST_PARTS_PAGES {
        let answer = page(marker).await?;
        let (listed, next) = list_parts_page(&answer).ok_or_else(&unreadable)?;
        parts.extend(listed);
        marker = next;
        if marker.is_none() {
            break;
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_parts_are_read_page_after_page_within_the_bound() {
        let page = |from: u32, next: Option<u32>| {
            let part = format!("<Part><PartNumber>{from}</PartNumber><ETag>\"e{from}\"</ETag><Size>5</Size></Part>");
            let more = next.map_or("<IsTruncated>false</IsTruncated>".to_owned(), |n| {
                format!("<IsTruncated>true</IsTruncated><NextPartNumberMarker>{n}</NextPartNumberMarker>")
            });
            format!("<ListPartsResult>{part}{more}</ListPartsResult>")
        };
        let asked = std::cell::RefCell::new(Vec::new());
        let three = futures::executor::block_on(all_listed_parts(
            |marker| {
                asked.borrow_mut().push(marker);
                let body = match marker {
                    None => page(1, Some(1)),
                    Some(1) => page(2, Some(2)),
                    _ => page(3, None),
                };
                async move { Ok::<_, ()>(body) }
            },
            || (),
        ));
        assert_eq!(three.unwrap().iter().map(|p| p.part_number).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(*asked.borrow(), [None, Some(1), Some(2)]);
        let endless = futures::executor::block_on(all_listed_parts(|_| async { Ok::<_, ()>(page(1, Some(1))) }, || ()));
        assert_eq!(endless.unwrap().len(), MAX_LIST_PARTS_PAGES, "a store that pages forever is cut off");
        let garbage = futures::executor::block_on(all_listed_parts(
            |_| async { Ok::<_, &str>("<Part>".to_owned()) },
            || "unreadable",
        ));
        assert_eq!(garbage.unwrap_err(), "unreadable");
    }

    #[test]
    fn element_texts_are_read_in_order_and_escaping_round_trips() {
        let xml = "<A><Part><C>x</C></Part><Part><C>y</C></Part></A>";
        assert_eq!(xml_texts(xml, "C"), ["x", "y"]);
        assert_eq!((xml_text(xml, "C"), xml_text(xml, "B")), (Some("x"), None));
        assert_eq!(escape("\"a\"&<b>"), "\"a\"&amp;&lt;b&gt;");
        assert_eq!(unescape(&escape("a&<b>")), "a&<b>");
        assert_eq!(unescape("&quot;etag&quot;"), "\"etag\"");
    }

    #[test]
    fn complete_bodies_carry_the_checksums_their_algorithm_has_an_element_for() {
        let part = |n, checksum: Option<&str>| CompletedPart {
            part_number: n,
            etag: format!("\"e{n}\""),
            checksum: checksum.map(str::to_owned),
        };
        let parts = [part(1, Some("AAAAAA==")), part(2, Some("BBBBBB=="))];
        let body = complete_multipart_body(&parts, Some(ChecksumAlgorithm::Crc32c)).unwrap();
        assert_eq!(
            body,
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"e1\"</ETag>\
             <ChecksumCRC32C>AAAAAA==</ChecksumCRC32C></Part><Part><PartNumber>2</PartNumber><ETag>\"e2\"</ETag>\
             <ChecksumCRC32C>BBBBBB==</ChecksumCRC32C></Part></CompleteMultipartUpload>"
        );
        assert!(!complete_multipart_body(&parts, Some(ChecksumAlgorithm::Md5)).unwrap().contains("Checksum"));
        assert!(complete_multipart_body(&[part(1, None)], Some(ChecksumAlgorithm::Sha256)).is_none());
    }

    #[test]
    fn list_parts_answers_are_read_with_or_without_optional_fields() {
        let body = r#"<ListPartsResult><Bucket>b</Bucket><IsTruncated>true</IsTruncated>
            <NextPartNumberMarker>2</NextPartNumberMarker>
            <Part><PartNumber>1</PartNumber><ETag>&quot;aa&quot;</ETag><Size>5242880</Size></Part>
            <Part><PartNumber>2</PartNumber><LastModified>x</LastModified><ETag>"bb"</ETag><Size>7</Size></Part>
            </ListPartsResult>"#;
        let (parts, next) = list_parts_page(body).unwrap();
        let listed = |part_number, etag: &str, size| ListedPart { part_number, etag: etag.into(), size };
        assert_eq!(parts, vec![listed(1, "\"aa\"", 5_242_880), listed(2, "\"bb\"", 7)]);
        assert_eq!(next, Some(2));
        let (parts, next) =
            list_parts_page("<ListPartsResult><IsTruncated>false</IsTruncated></ListPartsResult>").unwrap();
        assert!(parts.is_empty() && next.is_none());
        assert!(list_parts_page("<Part><PartNumber>x</PartNumber></Part>").is_none());
    }
}
