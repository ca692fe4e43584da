"""Loaders of human data: each returns records plus a count of what it skipped and why."""

from culturealign.data.goqa import load_globalopinionqa
from culturealign.data.survey import Survey, load_survey, load_wvs_folder, load_wvs_respondents, write_survey_folder

__all__ = [
    "Survey",
    "load_globalopinionqa",
    "load_survey",
    "load_wvs_folder",
    "load_wvs_respondents",
    "write_survey_folder",
]
