"""Routes of the stakeholders' reports, mounted at /reports/."""

from django.urls import path

from experiments.reports import views

app_name = "reports"

urlpatterns = [
    path("", views.report_index, name="index"),
    path("<slug:key>/", views.report_detail, name="detail"),
    path("<slug:key>/result.json", views.report_result_json, name="result-json"),
    path("<slug:key>/result.csv", views.report_result_csv, name="result-csv"),
]
