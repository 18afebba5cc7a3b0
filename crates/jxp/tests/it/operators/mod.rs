//! What the operator and tool builders get: `/metrics` in Prometheus' text format, the access
//! log, and the OpenAPI and AsyncAPI documents generated from the models.

mod access_log;
mod metrics;
pub(crate) mod node;
mod openapi;
pub(crate) mod prometheus;
pub(crate) mod python;
