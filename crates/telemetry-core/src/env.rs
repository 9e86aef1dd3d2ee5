//! A snapshot of the process environment.
//!
//! Every decision reads the environment through [`Env`] rather than `std::env`, so that tests
//! (and hosts embedding several apps) can pass an exact environment without mutating the
//! process-global one.

use std::ffi::{OsStr, OsString};

/// An immutable set of environment variables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Env {
    /// Sorted by name, one entry per name: searched by halves. A vector rather than a map,
    /// because every host links what the toolkit instantiates, and a map of its own is more code.
    vars: Vec<(OsString, OsString)>,
}

/// The value of a variable, as far as this toolkit can read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvValue<'a> {
    /// The variable is not set.
    Unset,
    /// Set, valid UTF-8.
    Text(&'a str),
    /// Set, but not valid UTF-8: never a recognised value.
    NotUnicode,
}

impl Env {
    /// The current process environment.
    pub fn from_process() -> Self {
        Self::from_pairs(std::env::vars_os())
    }

    /// An environment made of exactly these variables.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        let mut vars: Vec<(OsString, OsString)> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        // Reversed, then sorted stably: of a name given twice the last pair comes first and
        // is the one kept, as the process's own environment would have it.
        vars.reverse();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars.dedup_by(|a, b| a.0 == b.0);
        Self { vars }
    }

    /// The raw value of `name`.
    pub fn get_os(&self, name: &str) -> Option<&OsStr> {
        let name = OsStr::new(name);
        self.vars
            .binary_search_by(|(k, _)| k.as_os_str().cmp(name))
            .ok()
            .map(|i| self.vars[i].1.as_os_str())
    }

    /// The value of `name`, distinguishing unset from non-UTF-8.
    pub fn get(&self, name: &str) -> EnvValue<'_> {
        match self.get_os(name) {
            None => EnvValue::Unset,
            Some(v) => v.to_str().map_or(EnvValue::NotUnicode, EnvValue::Text),
        }
    }

    /// All variables, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&OsStr, &OsStr)> {
        self.vars
            .iter()
            .map(|(k, v)| (k.as_os_str(), v.as_os_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_given_twice_keeps_its_last_value_and_names_iterate_in_order() {
        let env = Env::from_pairs([("B", "1"), ("A", "x"), ("B", "2"), ("C", "3"), ("B", "4")]);
        assert_eq!(env.get("B"), EnvValue::Text("4"));
        let names: Vec<_> = env
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let want: Vec<(OsString, OsString)> = [("A", "x"), ("B", "4"), ("C", "3")]
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        assert_eq!(names, want);
    }

    #[test]
    fn distinguishes_unset_and_text() {
        let env = Env::from_pairs([("A", "x"), ("EMPTY", "")]);
        assert_eq!(env.get("A"), EnvValue::Text("x"));
        assert_eq!(env.get("EMPTY"), EnvValue::Text(""));
        assert_eq!(env.get("C"), EnvValue::Unset);
        assert_eq!(env.get_os("A"), Some(OsStr::new("x")));
    }

    // A non-UTF-8 value is built from bytes, which only Unix strings are.
    #[cfg(unix)]
    #[test]
    fn non_unicode_is_neither_unset_nor_text() {
        use std::os::unix::ffi::OsStringExt;
        let env = Env::from_pairs([(OsString::from("B"), OsString::from_vec(vec![0xff, 0xfe]))]);
        assert_eq!(env.get("B"), EnvValue::NotUnicode);
        assert!(env.get_os("B").is_some());
    }
}
