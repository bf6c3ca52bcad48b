//! Bookkeeping shared by the forms: which fields were touched, their errors, and what the server
//! said about them. Small vectors rather than ordered maps: a form has a dozen fields, and every
//! map instantiation would add its own copy of the B-tree code to the WebAssembly download.

/// The error of `field` in a list of `(field, message)`.
pub fn error_of<F: PartialEq>(errors: &[(F, String)], field: F) -> Option<String> {
    errors
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, e)| e.clone())
}

/// Remembers that `field` was edited (once).
pub fn touch<F: PartialEq>(touched: &mut Vec<F>, field: F) {
    if !touched.contains(&field) {
        touched.push(field);
    }
}

/// Messages the server sent about fields, by the server's field name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerErrors(Vec<(String, String)>);

impl ServerErrors {
    pub fn get(&self, key: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, m)| m.clone())
    }

    pub fn set(&mut self, key: String, message: String) {
        self.remove(&key);
        self.0.push((key, message));
    }

    pub fn remove(&mut self, key: &str) {
        self.0.retain(|(k, _)| k != key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touched_fields_and_errors_behave_like_small_maps() {
        let mut touched = vec![];
        touch(&mut touched, 1);
        touch(&mut touched, 1);
        assert_eq!(touched, vec![1]);
        let errors = vec![(1, "bad".to_owned())];
        assert_eq!(error_of(&errors, 1).as_deref(), Some("bad"));
        assert_eq!(error_of(&errors, 2), None);
        let mut server = ServerErrors::default();
        server.set("name".into(), "a".into());
        server.set("name".into(), "b".into());
        assert_eq!(server.get("name").as_deref(), Some("b"));
        server.remove("name");
        assert_eq!(server.get("name"), None);
    }
}
