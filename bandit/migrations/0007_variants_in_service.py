from django.db import migrations, models


class Migration(migrations.Migration):
    """Variants added and retired while a Test runs, and a share of decisions each keeps:
    every variant of a Test that exists is in service, at the first version of its definition,
    with no minimum share."""

    dependencies = [
        ("bandit", "0006_reward_window"),
    ]

    operations = [
        migrations.AddField(
            model_name="test",
            name="retired_variants",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="test",
            name="minimum_variant_share",
            field=models.FloatField(default=0.0),
        ),
        migrations.AddField(
            model_name="test",
            name="definition_version",
            field=models.PositiveIntegerField(default=0),
        ),
    ]
