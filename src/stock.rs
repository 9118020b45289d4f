//! The stock pipelines of `mappings/`, embedded in the binary so `demo` and `bench` run wherever
//! the binary is, on exactly what an integrator copies.

/// A pipeline file: its name and its text.
pub type PipelineFile = (&'static str, &'static str);

/// Business Central → Mailchimp, in dependency order.
pub const BC_TO_MAILCHIMP: &[PipelineFile] = &[
    ("store.yaml", include_str!("../mappings/business-central-to-mailchimp/pipelines/store.yaml")),
    (
        "customers-to-members.yaml",
        include_str!("../mappings/business-central-to-mailchimp/pipelines/customers-to-members.yaml"),
    ),
    (
        "items-to-products.yaml",
        include_str!("../mappings/business-central-to-mailchimp/pipelines/items-to-products.yaml"),
    ),
    (
        "customers-to-ecommerce.yaml",
        include_str!("../mappings/business-central-to-mailchimp/pipelines/customers-to-ecommerce.yaml"),
    ),
    (
        "invoices-to-orders.yaml",
        include_str!("../mappings/business-central-to-mailchimp/pipelines/invoices-to-orders.yaml"),
    ),
];

/// Mailchimp → Business Central: consent and e-mail changes from the inbox.
pub const MAILCHIMP_TO_BC: &[PipelineFile] = &[
    ("consent.yaml", include_str!("../mappings/mailchimp-to-business-central/pipelines/consent.yaml")),
    ("email-changes.yaml", include_str!("../mappings/mailchimp-to-business-central/pipelines/email-changes.yaml")),
];

/// Dynamics GP → Mailchimp, in dependency order.
pub const GP_TO_MAILCHIMP: &[PipelineFile] = &[
    ("store.yaml", include_str!("../mappings/dynamics-gp-to-mailchimp/pipelines/store.yaml")),
    (
        "customers-to-members.yaml",
        include_str!("../mappings/dynamics-gp-to-mailchimp/pipelines/customers-to-members.yaml"),
    ),
    (
        "customers-to-ecommerce.yaml",
        include_str!("../mappings/dynamics-gp-to-mailchimp/pipelines/customers-to-ecommerce.yaml"),
    ),
    ("invoices-to-orders.yaml", include_str!("../mappings/dynamics-gp-to-mailchimp/pipelines/invoices-to-orders.yaml")),
];

/// The files of `set` named in `names`, in the set's order.
pub fn only(set: &[PipelineFile], names: &[&str]) -> Vec<PipelineFile> {
    set.iter().filter(|(file, _)| names.contains(file)).copied().collect()
}
