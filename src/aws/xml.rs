//! Reading AWS query-protocol XML answers over roxmltree: elements matched
//! by local name (namespaces ignored), their text, and the fields of an
//! error document (`Code`, `Message`, `RequestId`). Shared by the SQS query
//! codec and STS.
//!
//! Pure; knows no service's answers and must not import `aws::credentials`,
//! `sqs` or anything above `aws`.

use roxmltree::Node;

/// The first direct child element with this local name.
pub fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

/// The direct child elements with this local name.
pub fn children<'a, 'i: 'a>(
    node: Node<'a, 'i>,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

/// The text of a direct child element, as written; an empty element gives "".
pub fn child_text<'a>(node: Node<'a, '_>, name: &str) -> Option<&'a str> {
    child(node, name).map(|c| c.text().unwrap_or(""))
}

/// The trimmed text of the first element with this local name anywhere
/// under `node`; an empty element gives "".
pub fn descendant_text<'a>(node: Node<'a, '_>, name: &str) -> Option<&'a str> {
    node.descendants()
        .find(|c| c.is_element() && c.tag_name().name() == name)
        .map(|c| c.text().unwrap_or("").trim())
}

/// What an error answer says, wherever its shape puts it: AWS writes
/// `ErrorResponse/Error/Code`, moto sometimes `ErrorResponse/Errors/Error`,
/// and the request id sits beside or inside the error. Texts are trimmed and
/// unbounded: callers shorten them for their messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErrorFields<'a> {
    pub code: Option<&'a str>,
    pub message: Option<&'a str>,
    pub request_id: Option<&'a str>,
}

impl<'a> ErrorFields<'a> {
    /// The error fields found under `root`.
    pub fn of(root: Node<'a, '_>) -> ErrorFields<'a> {
        ErrorFields {
            code: descendant_text(root, "Code"),
            message: descendant_text(root, "Message"),
            request_id: descendant_text(root, "RequestId")
                .or_else(|| descendant_text(root, "RequestID")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roxmltree::Document;

    #[test]
    fn elements_are_found_by_local_name_and_text_is_kept_as_written() {
        let doc =
            Document::parse(r#"<R xmlns="urn:x"><A> one </A><B/><A>two</A><C><A>deep</A></C></R>"#)
                .unwrap();
        let root = doc.root_element();
        assert_eq!(child_text(root, "A"), Some(" one "));
        assert_eq!(child_text(root, "B"), Some(""));
        assert_eq!(child_text(root, "Z"), None);
        let texts: Vec<_> = children(root, "A").filter_map(|a| a.text()).collect();
        assert_eq!(texts, [" one ", "two"]);
        assert_eq!(
            descendant_text(child(root, "C").unwrap(), "A"),
            Some("deep")
        );
    }

    #[test]
    fn error_fields_of_both_shapes() {
        for xml in [
            "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>\
             <Message> no </Message></Error><RequestId>r-1</RequestId></ErrorResponse>",
            "<ErrorResponse><Errors><Error><Code>AccessDenied</Code><Message>no</Message>\
             </Error></Errors><RequestID>r-1</RequestID></ErrorResponse>",
        ] {
            let doc = Document::parse(xml).unwrap();
            assert_eq!(
                ErrorFields::of(doc.root_element()),
                ErrorFields {
                    code: Some("AccessDenied"),
                    message: Some("no"),
                    request_id: Some("r-1"),
                },
                "{xml}"
            );
        }
        let doc = Document::parse("<html>Internal Server Error</html>").unwrap();
        assert_eq!(ErrorFields::of(doc.root_element()), ErrorFields::default());
    }
}
