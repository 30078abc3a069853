"""Studies: grids and random searches of job variants, their templates and their expansion."""
