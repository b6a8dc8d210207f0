"""An example DebiasBench plugin: a method and a dataset that live outside the DebiasBench repository."""
