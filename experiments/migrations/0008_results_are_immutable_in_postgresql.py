"""On PostgreSQL, a trigger refuses any UPDATE or DELETE of a stored analysis result.

The model refuses too, but results are the product's promise: a raw SQL statement or a
queryset .update() must not be able to change one either.
"""

from django.db import migrations

CREATE = """
CREATE FUNCTION experiments_result_is_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'analysis results are immutable (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER experiments_result_immutable BEFORE UPDATE OR DELETE ON experiments_analysisresult
    FOR EACH ROW EXECUTE FUNCTION experiments_result_is_immutable();
"""
DROP = """
DROP TRIGGER IF EXISTS experiments_result_immutable ON experiments_analysisresult;
DROP FUNCTION IF EXISTS experiments_result_is_immutable();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("experiments", "0007_analysis_result")]

    operations = [migrations.RunPython(forwards, backwards)]
