//! Query parameters: parsed against each endpoint's list of names, so an unknown, repeated or
//! malformed parameter is a 400 naming it. Empty values are ignored, as by the grid proxy. Lists are
//! comma-separated.

use std::collections::BTreeMap;

use crate::error::Error;
use crate::limits::{
    LIST_PARAM_VALUES_MAX, PAGE_MAX, PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, QUERY_PARAMS_MAX,
    STRING_PARAM_BYTES_MAX,
};
use crate::store::Value;

/// The paging parameters every list endpoint takes.
pub const PAGING: &[&str] = &["page", "size", "ret_count", "sort_by", "sort_order"];

#[derive(Debug)]
pub struct Params {
    values: BTreeMap<String, String>,
}

impl Params {
    /// Checks every name against `allowed` (and the paging parameters).
    pub fn new(pairs: Vec<(String, String)>, allowed: &[&str]) -> Result<Params, Error> {
        if pairs.len() > QUERY_PARAMS_MAX {
            return Err(Error::bad_param(
                "query",
                format!("more than {QUERY_PARAMS_MAX} parameters"),
            ));
        }
        let mut values = BTreeMap::new();
        for (name, value) in pairs {
            if !allowed.contains(&name.as_str()) && !PAGING.contains(&name.as_str()) {
                return Err(Error::bad_param(&name, "unknown parameter"));
            }
            if value.len() > STRING_PARAM_BYTES_MAX * LIST_PARAM_VALUES_MAX {
                return Err(Error::bad_param(&name, "too long"));
            }
            if value.is_empty() {
                continue;
            }
            if values.insert(name.clone(), value).is_some() {
                return Err(Error::bad_param(&name, "given more than once"));
            }
        }
        Ok(Params { values })
    }

    pub fn str(&self, name: &str) -> Result<Option<String>, Error> {
        match self.values.get(name) {
            Some(v) if v.len() > STRING_PARAM_BYTES_MAX => Err(Error::bad_param(
                name,
                format!("longer than {STRING_PARAM_BYTES_MAX} bytes"),
            )),
            v => Ok(v.cloned()),
        }
    }

    pub fn u64(&self, name: &str) -> Result<Option<u64>, Error> {
        self.values
            .get(name)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    Error::bad_param(name, format!("{v:?} is not a non-negative integer"))
                })
            })
            .transpose()
    }

    /// An integer that must fit the store's signed columns.
    pub fn int(&self, name: &str) -> Result<Option<Value>, Error> {
        self.u64(name)?
            .map(|v| {
                i64::try_from(v)
                    .map(Value::Int)
                    .map_err(|_| Error::bad_param(name, "too large"))
            })
            .transpose()
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, Error> {
        match self.values.get(name).map(String::as_str) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(v) => Err(Error::bad_param(
                name,
                format!("{v:?} is not true or false"),
            )),
        }
    }

    pub fn list(&self, name: &str) -> Result<Option<Vec<String>>, Error> {
        let Some(v) = self.values.get(name) else {
            return Ok(None);
        };
        let items: Vec<String> = v
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if items.len() > LIST_PARAM_VALUES_MAX {
            return Err(Error::bad_param(
                name,
                format!("more than {LIST_PARAM_VALUES_MAX} values"),
            ));
        }
        if items.iter().any(|s| s.len() > STRING_PARAM_BYTES_MAX) {
            return Err(Error::bad_param(name, "a value is too long"));
        }
        Ok((!items.is_empty()).then_some(items))
    }

    pub fn int_list(&self, name: &str) -> Result<Option<Vec<Value>>, Error> {
        self.list(name)?
            .map(|items| {
                items
                    .iter()
                    .map(|s| {
                        s.parse::<i64>()
                            .ok()
                            .filter(|v| *v >= 0)
                            .map(Value::Int)
                            .ok_or_else(|| {
                                Error::bad_param(
                                    name,
                                    format!("{s:?} is not a non-negative integer"),
                                )
                            })
                    })
                    .collect()
            })
            .transpose()
    }

    /// A list whose values must each be one of `choices` (compared without case); returns them as
    /// spelled in `choices`.
    pub fn choice_list(
        &self,
        name: &str,
        choices: &[&'static str],
    ) -> Result<Option<Vec<&'static str>>, Error> {
        self.list(name)?
            .map(|items| {
                items
                    .iter()
                    .map(|s| {
                        choices
                            .iter()
                            .find(|c| c.eq_ignore_ascii_case(s))
                            .copied()
                            .ok_or_else(|| {
                                Error::bad_param(
                                    name,
                                    format!("{s:?} is not one of {}", choices.join(", ")),
                                )
                            })
                    })
                    .collect()
            })
            .transpose()
    }

    pub fn paging(&self) -> Result<Paging, Error> {
        let page = self.u64("page")?.unwrap_or(1);
        if page == 0 || page > PAGE_MAX {
            return Err(Error::bad_param("page", format!("must be 1 to {PAGE_MAX}")));
        }
        let size = self.u64("size")?.unwrap_or(PAGE_SIZE_DEFAULT);
        if size == 0 || size > PAGE_SIZE_MAX {
            return Err(Error::bad_param(
                "size",
                format!("must be 1 to {PAGE_SIZE_MAX}"),
            ));
        }
        Ok(Paging {
            page,
            size,
            ret_count: self.bool("ret_count")?.unwrap_or(false),
        })
    }

    /// `ORDER BY` from `sort_by` (one of `columns`: name and SQL expression) and `sort_order`, with
    /// `tiebreak` last so pages are stable.
    pub fn order_by(
        &self,
        columns: &[(&str, &str)],
        default: &str,
        tiebreak: &str,
    ) -> Result<String, Error> {
        let by = self.str("sort_by")?;
        let expr = match by.as_deref() {
            None => default,
            Some(name) => columns
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, e)| *e)
                .ok_or_else(|| {
                    let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
                    Error::bad_param(
                        "sort_by",
                        format!("{name:?} is not one of {}", names.join(", ")),
                    )
                })?,
        };
        let order = match self.str("sort_order")?.as_deref() {
            None | Some("asc") => "ASC",
            Some("desc") => "DESC",
            Some(v) => {
                return Err(Error::bad_param(
                    "sort_order",
                    format!("{v:?} is not asc or desc"),
                ));
            }
        };
        Ok(format!("ORDER BY {expr} {order}, {tiebreak} {order}"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub page: u64,
    pub size: u64,
    pub ret_count: bool,
}

impl Paging {
    pub fn limit(&self) -> Value {
        Value::Int(self.size as i64)
    }

    pub fn offset(&self) -> Value {
        Value::Int(((self.page - 1) * self.size) as i64)
    }
}

/// WHERE clauses with their parameters, numbered in order.
#[derive(Debug, Default)]
pub struct Filter {
    pub clauses: Vec<String>,
    pub params: Vec<Value>,
}

impl Filter {
    /// Adds a parameter; returns its placeholder.
    pub fn bind(&mut self, v: impl Into<Value>) -> String {
        self.params.push(v.into());
        format!("${}", self.params.len())
    }

    /// `expr IN (...)` over the values.
    pub fn any_of(&mut self, expr: &str, values: Vec<Value>) {
        let holders: Vec<String> = values.into_iter().map(|v| self.bind(v)).collect();
        self.clauses
            .push(format!("{expr} IN ({})", holders.join(", ")));
    }

    /// `expr NOT IN (...)` over the values.
    pub fn none_of(&mut self, expr: &str, values: Vec<Value>) {
        let holders: Vec<String> = values.into_iter().map(|v| self.bind(v)).collect();
        self.clauses
            .push(format!("{expr} NOT IN ({})", holders.join(", ")));
    }

    /// `expr op $n`.
    pub fn cmp(&mut self, expr: &str, op: &str, v: impl Into<Value>) {
        let p = self.bind(v);
        self.clauses.push(format!("{expr} {op} {p}"));
    }

    /// Case-insensitive equality.
    pub fn eq_nocase(&mut self, expr: &str, v: &str) {
        let p = self.bind(v.to_lowercase());
        self.clauses.push(format!("LOWER({expr}) = {p}"));
    }

    /// Case-insensitive substring match, with LIKE's wildcards escaped.
    pub fn contains(&mut self, expr: &str, v: &str) {
        let escaped = v
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let p = self.bind(format!("%{escaped}%"));
        self.clauses
            .push(format!("LOWER({expr}) LIKE {p} ESCAPE '\\'"));
    }

    pub fn push(&mut self, clause: impl Into<String>) {
        self.clauses.push(clause.into());
    }

    pub fn where_sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &[(&str, &str)], allowed: &[&str]) -> Result<Params, Error> {
        Params::new(
            q.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            allowed,
        )
    }

    fn check_err(r: Result<impl std::fmt::Debug, Error>, name: &str) {
        match r {
            Err(Error::BadParam { name: n, .. }) => assert_eq!(n, name),
            other => panic!("expected a bad {name}, got {other:?}"),
        }
    }

    #[test]
    fn bad_parameters_are_named() {
        check_err(params(&[("colour", "red")], &["farm_ids"]), "colour");
        check_err(params(&[("size", "1"), ("size", "2")], &[]), "size");
        let p = params(
            &[("free_mru", "-1"), ("status", "up,sideways"), ("page", "0")],
            &["free_mru", "status"],
        )
        .unwrap();
        check_err(p.u64("free_mru"), "free_mru");
        check_err(p.choice_list("status", &["up", "down"]), "status");
        check_err(p.paging(), "page");
        let p = params(&[("size", "100000")], &[]).unwrap();
        check_err(p.paging(), "size");
        let p = params(&[("sort_by", "colour")], &[]).unwrap();
        check_err(
            p.order_by(&[("node_id", "n.node_id")], "n.node_id", "n.node_id"),
            "sort_by",
        );
    }

    #[test]
    fn lists_defaults_and_empty_values() {
        let p = params(
            &[
                ("farm_ids", "1, 2,3"),
                ("country", ""),
                ("ret_count", "true"),
            ],
            &["farm_ids", "country"],
        )
        .unwrap();
        assert_eq!(
            p.int_list("farm_ids").unwrap().unwrap(),
            vec![Value::Int(1), Value::Int(2), Value::Int(3)]
        );
        assert_eq!(p.str("country").unwrap(), None);
        assert_eq!(
            p.paging().unwrap(),
            Paging {
                page: 1,
                size: PAGE_SIZE_DEFAULT,
                ret_count: true
            }
        );
        let mut f = Filter::default();
        f.contains("name", "50%_off");
        assert_eq!(f.params, vec![Value::Text("%50\\%\\_off%".into())]);
    }

    proptest::proptest! {
        /// Whatever a client sends, parsing answers a value or a named 400, never a panic.
        #[test]
        fn arbitrary_queries_never_panic(
            pairs in proptest::collection::vec(
                (proptest::sample::select(vec!["page", "size", "ret_count", "sort_by",
                    "sort_order", "free_mru", "status", "farm_ids", "country", "x"]),
                 ".{0,40}"),
                0..8,
            )
        ) {
            let pairs: Vec<(String, String)> =
                pairs.into_iter().map(|(a, b)| (a.to_owned(), b)).collect();
            if let Ok(p) = Params::new(pairs, &["free_mru", "status", "farm_ids", "country"]) {
                let _ = p.paging();
                let _ = p.int("free_mru");
                let _ = p.choice_list("status", &["up", "down"]);
                let _ = p.int_list("farm_ids");
                let _ = p.str("country");
                let _ = p.order_by(&[("node_id", "n.node_id")], "n.node_id", "n.node_id");
            }
        }
    }
}
