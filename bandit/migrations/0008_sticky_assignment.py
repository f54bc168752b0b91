from django.db import migrations, models


class Migration(migrations.Migration):
    """Sticky assignment of units to variants: off for every Test until asked for."""

    dependencies = [
        ("bandit", "0007_variants_in_service"),
    ]

    operations = [
        migrations.AddField(
            model_name="test",
            name="sticky_assignment",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="test",
            name="sticky_seconds",
            field=models.PositiveIntegerField(default=86400),
        ),
    ]
