//! Parses selectors (`path.id`, `query.fieldsets`, `header.x-tenant`,
//! `body.query.paging.limit`, `caller.subjectId`) for one rule.

use http::HeaderName;

use super::condition::{BodyStep, CallerField, Selector};
use super::template::PathTemplate;

/// How the known caller fields are listed in messages.
pub(crate) const CALLER_FIELDS: &str = "subjectId, subjectType, instanceId or siteId";

/// Parses a selector of a rule with this template.
///
/// `Ok(None)` means "cannot tell": a `path.` selector when the template did
/// not parse, whose error is already reported.
pub(crate) fn parse(
    text: &str,
    template: Option<&PathTemplate>,
) -> Result<Option<Selector>, String> {
    let unknown = || {
        format!(
            "unknown selector `{text}`: expected path.<capture>, query.<name>, header.<name>, body.<path>, caller.<field>, all, any or not"
        )
    };
    let (prefix, rest) = text.split_once('.').ok_or_else(unknown)?;
    if rest.is_empty() {
        return Err(format!("`{text}` needs a name after the `.`"));
    }
    let selector =
        match prefix {
            "path" => {
                let Some(template) = template else {
                    return Ok(None);
                };
                Selector::Path(template.capture_index(rest).ok_or_else(|| {
                    let names: Vec<String> =
                        template.capture_names().map(|n| format!("`{n}`")).collect();
                    let known = if names.is_empty() {
                        "it has no captures".to_owned()
                    } else {
                        format!("its captures are {}", names.join(", "))
                    };
                    format!(
                        "`{text}`: path `{}` has no capture `{rest}` ({known})",
                        template.as_str()
                    )
                })?)
            }
            // Credentials are never condition inputs: a condition on them would
            // be meaningless (identity is `caller.*`), and a trace of one would
            // put a credential in a log.
            "query" if rest == "instance" => {
                return Err(format!(
                    "`{text}` is the caller's signed instance, a credential: use `caller.*` fields"
                ))
            }
            "query" => Selector::Query(rest.to_owned()),
            "header" => {
                let name = HeaderName::from_bytes(rest.to_ascii_lowercase().as_bytes())
                    .map_err(|_| format!("`{text}`: `{rest}` is not a valid header name"))?;
                if name == http::header::AUTHORIZATION {
                    return Err(format!(
                        "`{text}` is the caller's token, a credential: use `caller.*` fields"
                    ));
                }
                Selector::Header(name)
            }
            "body" => Selector::Body(body_path(text, rest)?),
            "caller" => Selector::Caller(CallerField::parse(rest).ok_or_else(|| {
                format!("unknown caller field `{rest}`: expected {CALLER_FIELDS}")
            })?),
            _ => return Err(unknown()),
        };
    Ok(Some(selector))
}

/// Splits a dotted body path; segments made of digits index arrays.
fn body_path(text: &str, path: &str) -> Result<Vec<BodyStep>, String> {
    path.split('.')
        .map(|part| {
            if part.is_empty() {
                Err(format!("`{text}`: empty segment in body path"))
            } else if part.bytes().all(|b| b.is_ascii_digit()) {
                part.parse()
                    .map(BodyStep::Index)
                    .map_err(|_| format!("`{text}`: array index `{part}` is too large"))
            } else {
                Ok(BodyStep::Key(part.to_owned()))
            }
        })
        .collect()
}
