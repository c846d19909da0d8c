//! End-to-end tests of printwatch live in `tests/tests/`; this library is
//! empty and exists so that the folder is a crate of the workspace.
