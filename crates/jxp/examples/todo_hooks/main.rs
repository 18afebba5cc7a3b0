//! A to-do API with hooks and functions, built with the `jxp` library.
//!
//! ```sh
//! cargo run -p jxp --example todo_hooks    # settings from the environment / .env
//! ```
//!
//! Then create the first admin with `POST /setup`, users with `POST /api/user`, and try
//! `POST /api/todo`, `GET /call/todo/stats` and `POST /call/todo/<id>/complete`.

mod app;

#[tokio::main]
async fn main() -> Result<(), jxp::Error> {
    tracing_subscriber::fmt().init();
    let config = jxp::Config::from_env()?;
    app::builder()
        .config(config)
        .serve(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
