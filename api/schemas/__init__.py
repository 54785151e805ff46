"""Request and response schemas: `XCreate` / `XUpdate` / `XPublic` families per resource."""
