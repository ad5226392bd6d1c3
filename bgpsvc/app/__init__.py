"""The programs: cli, the static speaker, the node speaker, the demo, control/metrics endpoints, logging
and the config-file loader. The only package that reads config files, the environment and signals."""
