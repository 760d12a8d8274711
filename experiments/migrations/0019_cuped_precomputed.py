"""CUPED's precomputed columns (experiments.db.covariate_arms): a covariate's arm, an outcome's covariate.

Rows stored before this migration get them here, as the ingestion paths now set them; every
experiment's watermark starts at 0, so the next resolver run re-resolves from the start (idempotent).
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('experiments', '0018_assignment_indexes'),
    ]

    operations = [
        migrations.AddField(
            model_name='covariate',
            name='variant',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, help_text="The unit's assigned variant; empty until the unit is assigned.", null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='experiments.variant', verbose_name='variant'),
        ),
        migrations.AddField(
            model_name='experiment',
            name='covariate_arms_through',
            field=models.BigIntegerField(default=0, editable=False, help_text="CUPED: every assignment up to this id has given its arm to its unit's covariates.", verbose_name='covariate arms resolved through'),
        ),
        migrations.AddField(
            model_name='unitoutcome',
            name='covariate',
            field=models.FloatField(blank=True, help_text="CUPED metrics (A/B): the unit's covariate of this metric; empty without one.", null=True, verbose_name='covariate'),
        ),
        migrations.RunSQL(
            # Correlated subqueries: plain SQL that PostgreSQL and SQLite both run.
            [
                "UPDATE experiments_covariate SET variant_id = (SELECT a.variant_id FROM experiments_assignment a "
                "WHERE a.experiment_id = experiments_covariate.experiment_id AND a.unit = experiments_covariate.unit)",
                "UPDATE experiments_unitoutcome SET covariate = (SELECT c.value FROM experiments_covariate c "
                "WHERE c.experiment_id = experiments_unitoutcome.experiment_id "
                "AND c.metric_position = experiments_unitoutcome.metric_position "
                "AND c.unit = experiments_unitoutcome.unit) "
                "WHERE EXISTS (SELECT 1 FROM experiments_covariate c "
                "WHERE c.experiment_id = experiments_unitoutcome.experiment_id)",
            ],
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
