//! Part of the `jxp` binary: the table of settings as `jxp serve`'s flags, each with its
//! environment variable and default, so `--help` lists every setting. Only values given on the
//! command line are taken from here; the environment (and `.env`) is read by
//! `Config::from_vars` as the library reads it, so both read settings one way.

use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Args, Command, FromArgMatches};
use jxp::{DefaultValue, SETTINGS, Setting};

/// The settings given as flags, as `(variable, value)` pairs.
#[derive(Debug, Clone, Default)]
pub struct SettingArgs {
    pub given: Vec<(String, String)>,
}

fn arg(s: &Setting) -> Arg {
    let arg = Arg::new(s.name)
        .long(s.name.to_ascii_lowercase().replace('_', "-"))
        .env(s.name)
        .hide_env_values(s.secret)
        .help_heading(s.section);
    match s.default {
        DefaultValue::Value(v) | DefaultValue::Derived(v) => arg.default_value(v).help(s.help),
        DefaultValue::Unset => arg.help(format!("{} [default: unset]", s.help)),
    }
}

impl Args for SettingArgs {
    fn augment_args(cmd: Command) -> Command {
        cmd.args(SETTINGS.iter().map(arg))
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for SettingArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let given = SETTINGS
            .iter()
            .filter(|s| matches.value_source(s.name) == Some(ValueSource::CommandLine))
            .filter_map(|s| {
                let value = matches.get_one::<String>(s.name)?;
                Some((s.name.to_owned(), value.clone()))
            })
            .collect();
        Ok(SettingArgs { given })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}
