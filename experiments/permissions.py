"""The Django permission names every surface checks (API, admin, reports), in one place.

The custom ones are declared on `Experiment.Meta.permissions` from `CUSTOM`; the groups
that hold them are created by a migration.
"""

APP = "experiments"

# Custom codenames, with the labels Django shows for them.
RUN_CODENAME = "run_experiment"
FETCH_ASSIGNMENT_CODENAME = "fetch_assignment"
POST_OBSERVATION_CODENAME = "post_observation"
CUSTOM = (
    (RUN_CODENAME, "Can start, stop, analyze and promote experiments"),
    (FETCH_ASSIGNMENT_CODENAME, "Can fetch assignments, as a service does"),
    (POST_OBSERVATION_CODENAME, "Can post observations, as a service does"),
)

VIEW = f"{APP}.view_experiment"
ADD = f"{APP}.add_experiment"
CHANGE = f"{APP}.change_experiment"
RUN = f"{APP}.{RUN_CODENAME}"
FETCH_ASSIGNMENT = f"{APP}.{FETCH_ASSIGNMENT_CODENAME}"
POST_OBSERVATION = f"{APP}.{POST_OBSERVATION_CODENAME}"
