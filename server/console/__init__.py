"""The web console: a prebuilt single-page app (sources in console/, built by `make console`)."""
