//! Mapping tests: `*.test.yaml` files beside a pipeline assert the exact request a record
//! renders to, or that the filter drops it. No network and no state: mapping is pure.
