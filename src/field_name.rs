//! When two JSON field or query parameter names are the same field to Wix.
//!
//! Wix APIs are gRPC services behind JSON transcoding: a field is accepted
//! under its JSON name (`dataCollectionId`) and its proto name
//! (`data_collection_id`), and some parsers ignore case. The gateway treats
//! every such spelling as one field, both when it refuses repeated fields and
//! when a policy looks a field up, so it can never read one field while Wix
//! reads another.

/// The canonical spelling of `name`: underscores dropped, ASCII lower case.
pub fn fold(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Whether `a` and `b` name the same field, without allocating.
pub fn same(a: &str, b: &str) -> bool {
    let mut a = a.bytes().filter(|b| *b != b'_');
    let mut b = b.bytes().filter(|b| *b != b'_');
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(&y) => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_field_are_the_same() {
        assert!(same("dataCollectionId", "data_collection_id"));
        assert!(same("cursorPaging", "cursor_paging"));
        assert!(same("ID", "id"));
        assert!(!same("memberId", "member"));
        assert!(!same("a", "ab"));
        assert_eq!(fold("data_Collection_ID"), "datacollectionid");
    }
}
