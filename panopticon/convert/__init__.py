"""`panopticon convert`: other exporters' configurations to MetricsConfigurations.

`--from ksm-crs` reads kube-state-metrics' custom resource state (CRS) configs and
writes one MetricsConfiguration per resource whose metrics use `each`
(panopticon.render.each), so that they serve the series kube-state-metrics serves:

- `reading`: the YAML, and the three forms a CRS config comes in;
- `crs`: the CRS structure, checked field by field (unknown fields named);
- `segments`: KSM's path segments as Panopticon paths;
- `wildcards`: `*` versions and kinds expanded against CRDs;
- `mapping`: resources to MetricsConfigurations (names, labels, families);
- `output`: the YAML written out.
"""
