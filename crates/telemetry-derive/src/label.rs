//! `#[derive(Label)]`: a fieldless enum's labels and index, both in declaration order.

use proc_macro2::TokenStream;
use quote::quote;
use syn::ext::IdentExt;
use syn::{Data, DeriveInput, Error, Fields};

use crate::attrs::{self, Errors, Spanned};
use crate::rules;

pub fn derive(input: &DeriveInput) -> syn::Result<TokenStream> {
    let Data::Enum(data) = &input.data else {
        return Err(Error::new_spanned(
            &input.ident,
            "#[derive(Label)] is for enums whose variants carry no data (a closed set of labels); \
             for an event use #[derive(Event)]",
        ));
    };
    let mut errors = Errors::default();
    let mut krate: Option<syn::Path> = None;
    attrs::for_each_key(&input.attrs, &mut errors, |key, meta| {
        match key {
            "crate" => krate = Some(attrs::crate_path(meta)?),
            "label" => {
                return Err(meta.error("`label` belongs on a variant, not on the enum"));
            }
            _ => {
                return Err(attrs::unknown(
                    meta,
                    key,
                    "a label enum",
                    "`crate = \"...\"` (and `label = \"...\"` on variants)",
                ));
            }
        }
        Ok(())
    });
    let krate = krate.unwrap_or_else(|| syn::parse_quote!(::telemetry_core));

    let mut labels: Vec<String> = Vec::new();
    let mut arms = Vec::new();
    let mut all_unit = true;
    for (index, variant) in data.variants.iter().enumerate() {
        if !matches!(variant.fields, Fields::Unit) {
            all_unit = false;
            errors.push(Error::new_spanned(
                &variant.fields,
                format!(
                    "variant `{}` carries data: a label is one of a closed set of names, so its \
                     variants carry none",
                    variant.ident
                ),
            ));
        }
        let mut rename: Option<Spanned<String>> = None;
        attrs::for_each_key(&variant.attrs, &mut errors, |key, meta| {
            match key {
                "label" => rename = Some(attrs::string(meta)?),
                _ => {
                    return Err(attrs::unknown(
                        meta,
                        key,
                        "a label variant",
                        "`label = \"...\"`",
                    ));
                }
            }
            Ok(())
        });
        let label = match &rename {
            Some(rename) => {
                if !rules::is_label(&rename.value) {
                    errors.push(rename.error(format!(
                        "label {:?} is not a catalogue label (`[a-z0-9][a-z0-9_.-]*`, at most 64 characters)",
                        rename.value
                    )));
                }
                rename.value.clone()
            }
            None => {
                let label = rules::snake_case(&variant.ident.unraw().to_string());
                if !rules::is_label(&label) {
                    errors.push(Error::new_spanned(
                        &variant.ident,
                        format!(
                            "the label from this variant's name, {label:?}, is not a catalogue label \
                             (`[a-z0-9][a-z0-9_.-]*`, at most 64 characters): give one with \
                             #[telemetry(label = \"...\")]"
                        ),
                    ));
                }
                label
            }
        };
        if labels.contains(&label) {
            errors.push(Error::new_spanned(
                &variant.ident,
                format!("label {label:?} is used twice: labels must be distinct"),
            ));
        }
        labels.push(label);
        let variant = &variant.ident;
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        arms.push(quote!(Self::#variant => #index,));
    }
    let (min, max) = rules::LABEL_COUNT;
    if !(min..=max).contains(&labels.len()) {
        errors.push(Error::new_spanned(
            &input.ident,
            format!(
                "a label enum needs {min} to {max} variants, this one has {}: k-ary randomised \
                 response needs at least two answers to hide among",
                labels.len()
            ),
        ));
    }
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let implementation = quote! {
        #[automatically_derived]
        impl #impl_generics #krate::event::Label for #ident #ty_generics #where_clause {
            const LABELS: &'static [&'static str] = &[#(#labels),*];
            fn index(&self) -> u32 {
                match *self {
                    #(#arms)*
                }
            }
        }
    };
    match errors.finish() {
        Ok(()) => Ok(implementation),
        // Wrong labels, but an impl that compiles: emit it too, so that the fields using the
        // enum do not add "`Label` is not implemented" to the one error that matters.
        Err(error) if all_unit && !data.variants.is_empty() => {
            let error = error.into_compile_error();
            Ok(quote!(#implementation #error))
        }
        Err(error) => Err(error),
    }
}
