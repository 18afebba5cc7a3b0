//! jxp-http
