"""Run by ``workbench serve --warm`` (``panel serve --setup``) before the server answers: every
panel of the default dataset, for every system and variable, is computed once into the
process caches, so no session pays for it (see :func:`workbench.apps.stages.warm`)."""

import logging
import os

from workbench.apps import stages

for name in os.environ.get("WORKBENCH_WARM_DATASETS", "reference").split(","):
    logging.getLogger("workbench.apps").warning("warmed %s: %s", name, stages.warm(name.strip()))
