//! `#[derive(Event)]`: one pass over the fields writes each `FIELDS` entry and its value together.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned as _;
use syn::{Data, DeriveInput, Error, Field, Fields, GenericArgument, PathArguments, Type};

use crate::attrs::{self, Errors, Spanned};
use crate::rules;

const STRUCT_KEYS: &str = "`name = \"...\"`, `epsilon = E`, `crate = \"...\"`";
const FIELD_KEYS: &str = "`epsilon = E`, `range = MIN..=MAX`, `text`, `max_len = N`, `version`, `name = \"...\"`, `skip`";
const SUPPORTED: &str = "an event field is one of: `bool`; a `#[derive(Label)]` enum; \
    `std::time::Duration`; an integer (`u8`..`u64`, `i8`..`i64`, `usize`, `isize`) with \
    `#[telemetry(range = MIN..=MAX)]`; a `String` or `&str` with `#[telemetry(text, max_len = N)]` \
    or `#[telemetry(version)]`; or an `Option` of one of these";

#[derive(Default)]
struct StructOpts {
    name: Option<Spanned<String>>,
    epsilon: Option<Spanned<f64>>,
    krate: Option<syn::Path>,
}

#[derive(Default)]
struct FieldOpts {
    skip: Option<Spanned<()>>,
    epsilon: Option<Spanned<f64>>,
    range: Option<Spanned<(i128, i128)>>,
    text: Option<Spanned<()>>,
    max_len: Option<Spanned<u32>>,
    version: Option<Spanned<()>>,
    name: Option<Spanned<String>>,
}

/// The integer types, with the values each can hold.
const INTEGERS: &[(&str, i128, i128)] = &[
    ("u8", 0, u8::MAX as i128),
    ("u16", 0, u16::MAX as i128),
    ("u32", 0, u32::MAX as i128),
    ("u64", 0, u64::MAX as i128),
    ("usize", 0, u64::MAX as i128),
    ("i8", i8::MIN as i128, i8::MAX as i128),
    ("i16", i16::MIN as i128, i16::MAX as i128),
    ("i32", i32::MIN as i128, i32::MAX as i128),
    ("i64", i64::MIN as i128, i64::MAX as i128),
    ("isize", i64::MIN as i128, i64::MAX as i128),
];

/// What a field records, decided from its type and attributes.
enum Kind {
    Bool,
    Label(Type),
    Duration,
    Integer {
        ty: &'static str,
        min: i64,
        max: i64,
    },
    Text {
        max_len: u32,
    },
    Version,
}

impl Kind {
    fn randomised(&self) -> bool {
        !matches!(self, Kind::Text { .. } | Kind::Version)
    }
}

pub fn derive(input: &DeriveInput) -> syn::Result<TokenStream> {
    let fields = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => &named.named,
            Fields::Unnamed(unnamed) => {
                return Err(Error::new_spanned(
                    unnamed,
                    "#[derive(Event)] needs named fields: each field's name is its name in the catalogue",
                ));
            }
            Fields::Unit => {
                return Err(Error::new_spanned(
                    &input.ident,
                    "#[derive(Event)] needs a struct with named fields (`struct E { ... }`); an event without fields records nothing",
                ));
            }
        },
        Data::Enum(e) => {
            return Err(Error::new_spanned(
                e.enum_token,
                "#[derive(Event)] is for structs with named fields; for a closed set of labels use #[derive(Label)]",
            ));
        }
        Data::Union(u) => {
            return Err(Error::new_spanned(
                u.union_token,
                "#[derive(Event)] is for structs with named fields",
            ));
        }
    };
    let mut errors = Errors::default();
    let opts = struct_opts(&input.attrs, &mut errors);
    let krate = opts
        .krate
        .clone()
        .unwrap_or_else(|| syn::parse_quote!(::telemetry_core));

    let description = errors.ok(attrs::description(
        &input.attrs,
        input.ident.span(),
        &format!("event `{}`", input.ident),
    ));
    let name = match &opts.name {
        Some(name) => {
            if !rules::is_identifier(&name.value) {
                errors.push(name.error(format!(
                    "event name {:?} is not a catalogue identifier (`[a-z][a-z0-9_]*`, at most 64 characters)",
                    name.value
                )));
            }
            name.value.clone()
        }
        None => {
            let name = rules::snake_case(&input.ident.unraw().to_string());
            if !rules::is_identifier(&name) {
                errors.push(Error::new_spanned(
                    &input.ident,
                    format!(
                        "the event name from this type's name, {name:?}, is not a catalogue identifier \
                         (`[a-z][a-z0-9_]*`, at most 64 characters): name it with #[telemetry(name = \"...\")]"
                    ),
                ));
            }
            name
        }
    };

    let mut decls = Vec::new();
    let mut values = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for field in fields {
        let Some((field_name, decl, value)) = one_field(field, &opts, &krate, &mut errors) else {
            continue;
        };
        if names.contains(&field_name) {
            errors.push(Error::new_spanned(
                field
                    .ident
                    .as_ref()
                    .map_or_else(|| field.ty.to_token_stream(), ToTokens::to_token_stream),
                format!("two fields are named `{field_name}` in the catalogue"),
            ));
        }
        names.push(field_name);
        decls.push(decl);
        values.push(value);
    }
    if names.len() > rules::MAX_FIELDS {
        errors.push(Error::new_spanned(
            &input.ident,
            format!(
                "{} fields: an event has at most {}",
                names.len(),
                rules::MAX_FIELDS
            ),
        ));
    }
    errors.finish()?;
    let description = description.unwrap_or_default();

    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let unused = values.is_empty().then(|| quote!(let _ = out;));
    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics #krate::event::Event for #ident #ty_generics #where_clause {
            const NAME: &'static str = #name;
            const DESCRIPTION: &'static str = #description;
            const FIELDS: &'static [#krate::event::FieldDecl] = &[#(#decls),*];
            fn values(&self, out: &mut dyn ::core::ops::FnMut(#krate::event::Value<'_>)) {
                #unused
                #(out(#values);)*
            }
        }
    })
}

fn struct_opts(attrs: &[syn::Attribute], errors: &mut Errors) -> StructOpts {
    let mut opts = StructOpts::default();
    attrs::for_each_key(attrs, errors, |key, meta| {
        match key {
            "name" => opts.name = Some(attrs::string(meta)?),
            "epsilon" => opts.epsilon = Some(attrs::epsilon(meta)?),
            "crate" => opts.krate = Some(attrs::crate_path(meta)?),
            "range" | "text" | "max_len" | "version" | "skip" => {
                return Err(meta.error(format!(
                    "`{key}` belongs on a field, not on the event struct"
                )));
            }
            _ => return Err(attrs::unknown(meta, key, "an event struct", STRUCT_KEYS)),
        }
        Ok(())
    });
    opts
}

fn field_opts(attrs: &[syn::Attribute], errors: &mut Errors) -> FieldOpts {
    let mut opts = FieldOpts::default();
    attrs::for_each_key(attrs, errors, |key, meta| {
        match key {
            "skip" => opts.skip = Some(attrs::flag(meta, key)?),
            "epsilon" => opts.epsilon = Some(attrs::epsilon(meta)?),
            "range" => opts.range = Some(attrs::range(meta)?),
            "text" => opts.text = Some(attrs::flag(meta, key)?),
            "max_len" => opts.max_len = Some(attrs::max_len(meta)?),
            "version" => opts.version = Some(attrs::flag(meta, key)?),
            "name" => opts.name = Some(attrs::string(meta)?),
            "crate" => {
                return Err(meta.error("`crate` belongs on the event struct, not on a field"));
            }
            _ => return Err(attrs::unknown(meta, key, "an event field", FIELD_KEYS)),
        }
        Ok(())
    });
    opts
}

/// A field's catalogue name, its `FieldDecl` and its value expression; `None` when skipped or
/// wrong (the error is in `errors`).
fn one_field(
    field: &Field,
    event: &StructOpts,
    krate: &syn::Path,
    errors: &mut Errors,
) -> Option<(String, TokenStream, TokenStream)> {
    let ident = field.ident.as_ref()?;
    let mut local = Errors::default();
    let opts = field_opts(&field.attrs, &mut local);
    if let Some(skip) = &opts.skip {
        let others = [
            opts.epsilon.as_ref().map(|s| &s.tokens),
            opts.range.as_ref().map(|s| &s.tokens),
            opts.text.as_ref().map(|s| &s.tokens),
            opts.max_len.as_ref().map(|s| &s.tokens),
            opts.version.as_ref().map(|s| &s.tokens),
            opts.name.as_ref().map(|s| &s.tokens),
        ];
        if others.iter().any(Option::is_some) {
            local.push(skip.error("a skipped field takes no other telemetry attribute"));
        }
        errors.ok(local.finish());
        return None;
    }

    let name = match &opts.name {
        Some(name) => {
            if !rules::is_identifier(&name.value) {
                local.push(name.error(format!(
                    "field name {:?} is not a catalogue identifier (`[a-z][a-z0-9_]*`, at most 64 characters)",
                    name.value
                )));
            }
            name.value.clone()
        }
        None => {
            let name = ident.unraw().to_string();
            if !rules::is_identifier(&name) {
                local.push(Error::new_spanned(
                    ident,
                    format!(
                        "field name `{name}` is not a catalogue identifier (`[a-z][a-z0-9_]*`, at most \
                         64 characters): rename it in the catalogue with #[telemetry(name = \"...\")]"
                    ),
                ));
            }
            name
        }
    };
    let description = local.ok(attrs::description(
        &field.attrs,
        ident.span(),
        &format!("field `{ident}`"),
    ));
    if local.has_errors() {
        // A key that did not parse is missing from `opts`: deciding the kind now would only add
        // errors that fixing the attribute removes.
        errors.ok(local.finish());
        return None;
    }
    let (inner, optional) = match strip_option(&field.ty) {
        Ok(found) => found,
        Err(e) => {
            local.push(e);
            errors.ok(local.finish());
            return None;
        }
    };
    let kind = local.ok(kind_of(inner, &opts));
    let epsilon = kind
        .as_ref()
        .and_then(|kind| local.ok(epsilon_of(kind, field, &opts, event)));
    let failed = local.finish().map_err(|e| errors.push(e)).is_err();
    if failed {
        return None;
    }
    let (kind, description) = (kind?, description?);

    let decl_path = quote!(#krate::event::FieldDecl);
    let value_path = quote!(#krate::event::Value);
    let eps = epsilon.flatten();
    let decl = match &kind {
        Kind::Bool => quote!(#decl_path::boolean(#name, #description, #eps)),
        Kind::Label(ty) => quote_spanned! {ty.span()=>
            #decl_path::enumeration(
                #name,
                #description,
                <#ty as #krate::event::Label>::LABELS,
                #eps,
            )
        },
        Kind::Duration => quote!(#decl_path::duration(#name, #description, #eps)),
        Kind::Integer { min, max, .. } => {
            quote!(#decl_path::integer(#name, #description, #min, #max, #eps))
        }
        Kind::Text { max_len } => quote!(#decl_path::text(#name, #description, #max_len)),
        Kind::Version => quote!(#decl_path::version(#name, #description)),
    };
    // `v: &Inner` in both the plain and the optional case.
    let convert = match &kind {
        Kind::Bool => quote!(#value_path::Bool(*v)),
        Kind::Label(ty) => quote_spanned! {ty.span()=>
            #value_path::Enum(<#ty as #krate::event::Label>::index(v))
        },
        Kind::Duration => quote!(#value_path::Duration(*v)),
        Kind::Integer { ty, .. } => {
            let ty = syn::Ident::new(ty, proc_macro2::Span::call_site());
            match ty.to_string().as_str() {
                // Wider than i64 at one end: saturate, and the recorder clamps to the range.
                "u64" | "usize" => quote! {
                    #value_path::Integer(
                        <::core::primitive::i64 as ::core::convert::TryFrom<::core::primitive::#ty>>::try_from(*v)
                            .unwrap_or(::core::primitive::i64::MAX),
                    )
                },
                "isize" => quote! {
                    #value_path::Integer(
                        <::core::primitive::i64 as ::core::convert::TryFrom<::core::primitive::isize>>::try_from(*v)
                            .unwrap_or(if *v < 0 { ::core::primitive::i64::MIN } else { ::core::primitive::i64::MAX }),
                    )
                },
                _ => quote! {
                    #value_path::Integer(
                        <::core::primitive::i64 as ::core::convert::From<::core::primitive::#ty>>::from(*v),
                    )
                },
            }
        }
        Kind::Text { .. } => quote_spanned! {inner.span()=>
            #value_path::Text(<#inner as ::core::convert::AsRef<::core::primitive::str>>::as_ref(v))
        },
        Kind::Version => quote_spanned! {inner.span()=>
            #value_path::Version(<#inner as ::core::convert::AsRef<::core::primitive::str>>::as_ref(v))
        },
    };
    let value = if optional {
        quote! {
            match &self.#ident {
                ::core::option::Option::Some(v) => #convert,
                ::core::option::Option::None => #value_path::Missing,
            }
        }
    } else {
        quote!({
            let v = &self.#ident;
            #convert
        })
    };
    Some((name, decl, value))
}

/// `Option<T>` → `(T, true)`; anything else → `(ty, false)`. Refuses `Option<Option<T>>`.
fn strip_option(ty: &Type) -> syn::Result<(&Type, bool)> {
    let Some(inner) = option_inner(ty) else {
        return Ok((ty, false));
    };
    if option_inner(inner).is_some() {
        return Err(Error::new_spanned(
            ty,
            "`Option<Option<_>>` is not a field: a field is either recorded or missing",
        ));
    }
    Ok((inner, true))
}

fn option_inner(ty: &Type) -> Option<&Type> {
    let path = type_path(ty)?;
    let last = path.segments.last()?;
    if last.ident != "Option" || !is_std(path, &["option"]) {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.iter().collect::<Vec<_>>()[..] {
        [GenericArgument::Type(inner)] => Some(inner),
        _ => None,
    }
}

/// The path of a plain path type (through invisible groups and parentheses).
fn type_path(ty: &Type) -> Option<&syn::Path> {
    match ty {
        Type::Path(p) if p.qself.is_none() => Some(&p.path),
        Type::Group(g) => type_path(&g.elem),
        Type::Paren(p) => type_path(&p.elem),
        _ => None,
    }
}

/// `Name` alone, or `std::<module>::Name` / `core::...` / `alloc::...` (with an optional `::`).
fn is_std(path: &syn::Path, module: &[&str]) -> bool {
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    match &segments[..] {
        [_] => path.leading_colon.is_none(),
        [root, middle @ .., _] => {
            matches!(root.as_str(), "std" | "core" | "alloc")
                && middle.iter().map(String::as_str).eq(module.iter().copied())
        }
        [] => false,
    }
}

fn text_hint(what: &str) -> String {
    format!(
        "{what} is free text, which telemetry never records by default: mark it \
         #[telemetry(text, max_len = N)] to record it redacted (not randomised), or \
         #[telemetry(version)] if it is a version number"
    )
}

fn kind_of(ty: &Type, opts: &FieldOpts) -> syn::Result<Kind> {
    let text_like = [("text", &opts.text), ("version", &opts.version)];
    if let (Some(text), Some(_)) = (&opts.text, &opts.version) {
        return Err(text.error("a field is `text` or `version`, not both"));
    }
    if let Some(max_len) = &opts.max_len
        && opts.text.is_none()
    {
        return Err(max_len.error("`max_len` applies to `text` fields only"));
    }
    for (key, flag) in text_like {
        let Some(flag) = flag else { continue };
        if let Some(range) = &opts.range {
            return Err(range.error(format!("`range` applies to integer fields, not `{key}`")));
        }
        if let Some(epsilon) = &opts.epsilon {
            return Err(epsilon.error(format!(
                "a `{key}` field is not randomised, so it spends no epsilon: remove `epsilon`"
            )));
        }
        return if key == "version" {
            Ok(Kind::Version)
        } else {
            let max_len = opts.max_len.as_ref().ok_or_else(|| {
                flag.error("a `text` field needs its longest redacted length: `#[telemetry(text, max_len = N)]` (1..=200)")
            })?;
            Ok(Kind::Text {
                max_len: max_len.value,
            })
        };
    }

    let kind = match ty {
        Type::Reference(r) => {
            let is_str = type_path(&r.elem).is_some_and(|p| p.is_ident("str"));
            return Err(Error::new_spanned(
                ty,
                if is_str {
                    text_hint("a `&str`")
                } else {
                    "a reference is a field only as `&str` (text or version): use the value's type"
                        .to_owned()
                },
            ));
        }
        _ => match type_path(ty) {
            None => {
                return Err(Error::new_spanned(
                    ty,
                    format!("unsupported field type; {SUPPORTED}"),
                ));
            }
            Some(path) => classify_path(ty, path)?,
        },
    };
    match (&kind, &opts.range) {
        (Kind::Integer { ty: int, .. }, None) => Err(Error::new_spanned(
            ty,
            format!(
                "an integer field (`{int}`) needs its range, `#[telemetry(range = MIN..=MAX)]`: \
                 values are clamped to it before noise is added, and its width sets how much noise"
            ),
        )),
        (Kind::Integer { ty: int, .. }, Some(range)) => {
            let (min, max) = range.value;
            let (_, lo, hi) = INTEGERS
                .iter()
                .find(|(n, _, _)| n == int)
                .expect("an integer type");
            if min < *lo || max > *hi {
                return Err(range.error(format!(
                    "range {min}..={max} does not fit `{int}` ({lo}..={hi})"
                )));
            }
            Ok(Kind::Integer {
                ty: int,
                min: i64::try_from(min).expect("within the clamp bound"),
                max: i64::try_from(max).expect("within the clamp bound"),
            })
        }
        (_, Some(range)) => Err(range.error("`range` applies to integer fields only")),
        (_, None) => Ok(kind),
    }
}

fn classify_path(ty: &Type, path: &syn::Path) -> syn::Result<Kind> {
    let last = path.segments.last().expect("a path has a segment");
    let name = last.ident.to_string();
    let plain = path.segments.len() == 1 && path.leading_colon.is_none();
    if plain && let Some((int, _, _)) = INTEGERS.iter().find(|(n, _, _)| *n == name) {
        return Ok(Kind::Integer {
            ty: int,
            min: 0,
            max: 0,
        });
    }
    let refuse = |message: String| Err(Error::new_spanned(ty, message));
    match name.as_str() {
        "bool" if plain => Ok(Kind::Bool),
        "Duration" if is_std(path, &["time"]) => Ok(Kind::Duration),
        "String" | "str" | "Cow" if plain || is_std(path, &["string"]) || is_std(path, &["borrow"]) => {
            refuse(text_hint(&format!("a `{name}`")))
        }
        "f32" | "f64" if plain => refuse(
            "floating-point fields are not supported: record a bounded integer (e.g. milliseconds, \
             a percentage) with #[telemetry(range = MIN..=MAX)], or a `Duration`"
                .to_owned(),
        ),
        "u128" | "i128" if plain => refuse(
            "128-bit integers are not supported: use `u64` or `i64` with #[telemetry(range = MIN..=MAX)]"
                .to_owned(),
        ),
        "char" if plain => refuse(
            "a `char` is free text: record what it means as a #[derive(Label)] enum".to_owned(),
        ),
        "PathBuf" | "Path" | "OsString" | "OsStr" => refuse(
            "file paths and OS strings are never recorded: record what matters about them as a \
             #[derive(Label)] enum or a bounded integer"
                .to_owned(),
        ),
        "Vec" | "VecDeque" | "LinkedList" | "HashMap" | "BTreeMap" | "HashSet" | "BTreeSet"
        | "BinaryHeap" => refuse(
            "collections are not supported: a field holds one value; record a count as a bounded \
             integer, or one event per item"
                .to_owned(),
        ),
        "Box" | "Rc" | "Arc" | "RefCell" | "Cell" | "Mutex" | "RwLock" => refuse(format!(
            "`{name}` is not a field type: record the value it holds"
        )),
        // Anything else must implement `Label`; the compiler says so at this type if it does not.
        _ => Ok(Kind::Label(ty.clone())),
    }
}

/// The field's ε (`None` for fields that are not randomised); refuses a randomised field without.
fn epsilon_of(
    kind: &Kind,
    field: &Field,
    opts: &FieldOpts,
    event: &StructOpts,
) -> syn::Result<Option<f64>> {
    if !kind.randomised() {
        return Ok(None);
    }
    let epsilon = opts.epsilon.as_ref().or(event.epsilon.as_ref());
    match epsilon {
        Some(epsilon) => Ok(Some(epsilon.value)),
        None => Err(Error::new_spanned(
            field
                .ident
                .as_ref()
                .map_or_else(|| field.ty.to_token_stream(), ToTokens::to_token_stream),
            "a randomised field needs its privacy budget: `#[telemetry(epsilon = E)]` on the field, \
             or a default for the event with `#[telemetry(epsilon = E)]` on the struct",
        )),
    }
}
