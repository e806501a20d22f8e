"""Pipeline and job definitions: the component interface, data preparation and the local trainer."""
