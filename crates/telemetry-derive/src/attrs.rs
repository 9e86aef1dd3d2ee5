//! `#[telemetry(...)]` attributes and doc comments, read into plain values with their spans.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::parse::ParseStream;
use syn::{Attribute, Error, Expr, ExprLit, Lit, LitInt, LitStr, Meta, Token};

use crate::rules;

/// Errors gathered across a whole item, so one compile shows every problem at once.
#[derive(Default)]
pub struct Errors(Option<Error>);

impl Errors {
    pub fn push(&mut self, error: Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// The value, or the error recorded (and keeps going with `None`).
    pub fn ok<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|e| self.push(e)).ok()
    }

    pub fn has_errors(&self) -> bool {
        self.0.is_some()
    }

    pub fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// A value and the tokens it was written as (errors about it underline all of them).
#[derive(Clone)]
pub struct Spanned<T> {
    pub value: T,
    pub tokens: TokenStream,
}

impl<T> Spanned<T> {
    /// An error underlining where the value was written.
    pub fn error(&self, message: impl std::fmt::Display) -> Error {
        Error::new_spanned(&self.tokens, message)
    }
}

/// Calls `each` for every `key` or `key = value` inside every `#[telemetry(...)]` of `attrs`;
/// refuses a key given twice.
pub fn for_each_key(
    attrs: &[Attribute],
    errors: &mut Errors,
    mut each: impl FnMut(&str, &ParseNestedMeta<'_>) -> syn::Result<()>,
) {
    let mut seen = Vec::<String>::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("telemetry")) {
        let result = attr.parse_nested_meta(|meta| {
            let key = meta
                .path
                .get_ident()
                .map(ToString::to_string)
                .or_else(|| meta.path.is_ident("crate").then(|| "crate".to_owned()))
                .unwrap_or_else(|| meta.path.to_token_stream().to_string());
            if seen.contains(&key) {
                return Err(meta.error(format!("`{key}` is given twice")));
            }
            seen.push(key.clone());
            each(&key, &meta)
        });
        errors.ok(result);
    }
}

/// The error for a key this item does not take.
pub fn unknown(meta: &ParseNestedMeta<'_>, key: &str, item: &str, allowed: &str) -> Error {
    meta.error(format!(
        "unknown telemetry attribute `{key}` on {item}; expected one of: {allowed}"
    ))
}

/// `= "text"`.
pub fn string(meta: &ParseNestedMeta<'_>) -> syn::Result<Spanned<String>> {
    let lit: LitStr = meta.value()?.parse()?;
    Ok(Spanned {
        value: lit.value(),
        tokens: lit.to_token_stream(),
    })
}

/// `= "path::to::telemetry_core"`.
pub fn crate_path(meta: &ParseNestedMeta<'_>) -> syn::Result<syn::Path> {
    let lit: LitStr = meta.value()?.parse()?;
    lit.parse::<syn::Path>().map_err(|_| {
        Error::new(
            lit.span(),
            "expected a path, e.g. `crate = \"my_sdk::telemetry_core\"`",
        )
    })
}

/// An integer literal with an optional leading `-`, as `i128`, and the tokens it was written as.
fn signed_int(input: ParseStream<'_>) -> syn::Result<(i128, TokenStream)> {
    let minus: Option<Token![-]> = input.parse()?;
    let lit: LitInt = input.parse().map_err(|e| {
        Error::new(
            e.span(),
            "expected an integer literal (a range is `MIN..=MAX`, e.g. `0..=100`)",
        )
    })?;
    let value: i128 = lit.base10_parse()?;
    let tokens = quote::quote!(#minus #lit);
    Ok((if minus.is_some() { -value } else { value }, tokens))
}

/// `= MIN..=MAX`, integer literals.
pub fn range(meta: &ParseNestedMeta<'_>) -> syn::Result<Spanned<(i128, i128)>> {
    let input = meta.value()?;
    let (min, min_tokens) = signed_int(input)?;
    if input.peek(Token![..=]) {
        input.parse::<Token![..=]>()?;
    } else if input.peek(Token![..]) {
        let dots: Token![..] = input.parse()?;
        return Err(Error::new_spanned(
            dots,
            "write an inclusive range, `MIN..=MAX`: both ends are values the field may take",
        ));
    } else {
        return Err(input.error("expected `..=` (a range is `MIN..=MAX`, e.g. `0..=100`)"));
    }
    let (max, max_tokens) = signed_int(input)?;
    let tokens = quote::quote!(#min_tokens ..= #max_tokens);
    if min >= max {
        return Err(Error::new_spanned(
            tokens,
            format!("empty range {min}..={max}: the range needs MIN < MAX"),
        ));
    }
    if min < -rules::CLAMP_BOUND || max > rules::CLAMP_BOUND {
        return Err(Error::new_spanned(
            tokens,
            format!(
                "range {min}..={max} is too wide: the catalogue keeps integer bounds within ±{}",
                rules::CLAMP_BOUND
            ),
        ));
    }
    Ok(Spanned {
        value: (min, max),
        tokens,
    })
}

/// `= E`, a positive float or integer literal in `(0, MAX_EPSILON]`.
pub fn epsilon(meta: &ParseNestedMeta<'_>) -> syn::Result<Spanned<f64>> {
    let input = meta.value()?;
    let minus: Option<Token![-]> = input.parse()?;
    let lit: Lit = input.parse()?;
    let value = match &lit {
        Lit::Float(f) => f.base10_parse::<f64>()?,
        Lit::Int(i) => i.base10_parse::<f64>()?,
        other => {
            return Err(Error::new_spanned(
                other,
                "epsilon must be a number literal, e.g. `epsilon = 1.0`",
            ));
        }
    };
    let value = if minus.is_some() { -value } else { value };
    let tokens = quote::quote!(#minus #lit);
    if !rules::epsilon_ok(value) {
        return Err(Error::new_spanned(
            tokens,
            format!(
                "epsilon must be in (0, {}], got {value}: it is the privacy budget each report of this field spends",
                rules::MAX_EPSILON
            ),
        ));
    }
    Ok(Spanned { value, tokens })
}

/// `= N`, redacted text's length, 1..=MAX_TEXT_LEN.
pub fn max_len(meta: &ParseNestedMeta<'_>) -> syn::Result<Spanned<u32>> {
    let lit: LitInt = meta.value()?.parse()?;
    let value: u64 = lit.base10_parse()?;
    match u32::try_from(value) {
        Ok(n) if (1..=rules::MAX_TEXT_LEN).contains(&n) => Ok(Spanned {
            value: n,
            tokens: lit.to_token_stream(),
        }),
        _ => Err(Error::new(
            lit.span(),
            format!(
                "max_len must be 1..={}, got {value}: the longest text kept after redaction",
                rules::MAX_TEXT_LEN
            ),
        )),
    }
}

/// A bare flag (`text`, `version`, `skip`): refuses `= value`.
pub fn flag(meta: &ParseNestedMeta<'_>, key: &str) -> syn::Result<Spanned<()>> {
    if meta.input.peek(Token![=]) {
        return Err(meta.error(format!("`{key}` takes no value")));
    }
    Ok(Spanned {
        value: (),
        tokens: meta.path.to_token_stream(),
    })
}

/// The doc comment of an item, lines trimmed and joined with single spaces (`None`: no doc).
pub fn doc(attrs: &[Attribute]) -> syn::Result<Option<String>> {
    let mut words = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("doc")) {
        let Meta::NameValue(nv) = &attr.meta else {
            continue; // `#[doc(hidden)]` and the like
        };
        match &nv.value {
            Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            }) => words.extend(
                s.value()
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned),
            ),
            other => {
                return Err(Error::new_spanned(
                    other,
                    "the catalogue reads doc comments at compile time: write the doc as literal text",
                ));
            }
        }
    }
    Ok((!words.is_empty()).then(|| words.join(" ")))
}

/// The doc comment as a catalogue description, or an error at `span` naming `what`.
pub fn description(attrs: &[Attribute], span: Span, what: &str) -> syn::Result<String> {
    let Some(text) = doc(attrs)? else {
        return Err(Error::new(
            span,
            format!(
                "{what} has no doc comment: its `///` doc is its description in the catalogue, \
                 which people read before consenting"
            ),
        ));
    };
    let chars = text.chars().count();
    if chars > rules::MAX_DESCRIPTION {
        return Err(Error::new(
            span,
            format!(
                "the doc comment of {what} is {chars} characters; a catalogue description holds at most {}",
                rules::MAX_DESCRIPTION
            ),
        ));
    }
    Ok(text)
}
