//! A snapshot of the process environment.
//!
//! Every decision reads the environment through [`Env`] rather than `std::env`, so that tests
//! (and hosts embedding several apps) can pass an exact environment without mutating the
//! process-global one.

use std::ffi::{OsStr, OsString};

/// An immutable set of environment variables.
#[derive(Clone, Debug, Default)]
pub struct Env {
    /// As given, in order: of a name given twice the last pair counts, as the process's own
    /// environment would have it. Neither sorted nor deduplicated when taken: a run reads a
    /// few names by a linear search (a process has tens of variables), and only the rare
    /// scans ([`Env::iter`]) pay for an order. Taking the snapshot is on every host's start-up
    /// path, disabled or not, and sorting it was more code to fault in than the search.
    vars: Vec<(OsString, OsString)>,
}

impl PartialEq for Env {
    /// The same variables with the same values, however they were given.
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Env {}

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
        Self {
            vars: std::env::vars_os().collect(),
        }
    }

    /// An environment made of exactly these variables (of a name given twice, the last value).
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The raw value of `name`.
    pub fn get_os(&self, name: &str) -> Option<&OsStr> {
        let name = OsStr::new(name);
        self.vars
            .iter()
            .rev()
            .find(|(k, _)| k.as_os_str() == name)
            .map(|(_, v)| v.as_os_str())
    }

    /// The value of `name`, distinguishing unset from non-UTF-8.
    pub fn get(&self, name: &str) -> EnvValue<'_> {
        match self.get_os(name) {
            None => EnvValue::Unset,
            Some(v) => v.to_str().map_or(EnvValue::NotUnicode, EnvValue::Text),
        }
    }

    /// Whether a variable's name satisfies `f` (asked of the names in no particular order,
    /// without the sort [`Env::iter`] pays for).
    pub fn any_name(&self, mut f: impl FnMut(&OsStr) -> bool) -> bool {
        self.vars.iter().any(|(k, _)| f(k))
    }

    /// All variables, in name order, each once with the value that counts.
    pub fn iter(&self) -> impl Iterator<Item = (&OsStr, &OsStr)> {
        let mut vars: Vec<(&OsStr, &OsStr)> = self
            .vars
            .iter()
            .rev()
            .map(|(k, v)| (k.as_os_str(), v.as_os_str()))
            .collect();
        // Stable, after the reversal: of a name given twice the last pair comes first and is
        // the one `dedup_by` keeps.
        vars.sort_by(|a, b| a.0.cmp(b.0));
        vars.dedup_by(|a, b| a.0 == b.0);
        vars.into_iter()
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
        // Equal whatever the order or the repeats they were given in.
        assert_eq!(env, Env::from_pairs([("C", "3"), ("B", "4"), ("A", "x")]));
        assert_ne!(env, Env::from_pairs([("C", "3"), ("B", "2"), ("A", "x")]));
    }

    #[test]
    fn distinguishes_unset_and_text() {
        let env = Env::from_pairs([("A", "x"), ("EMPTY", "")]);
        assert_eq!(env.get("A"), EnvValue::Text("x"));
        assert_eq!(env.get("EMPTY"), EnvValue::Text(""));
        assert_eq!(env.get("C"), EnvValue::Unset);
        assert_eq!(env.get_os("A"), Some(OsStr::new("x")));
        assert!(env.any_name(|n| n == "EMPTY"));
        assert!(!env.any_name(|n| n == "C"));
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
