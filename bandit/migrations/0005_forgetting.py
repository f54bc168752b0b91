from django.db import migrations, models


class Migration(migrations.Migration):
    """When a variant forgets what it learned. Tests that exist keep learning as they did
    (never); new Tests forget what a variant learned before a detected change."""

    dependencies = [
        ("bandit", "0004_prior"),
    ]

    operations = [
        migrations.AddField(
            model_name="test",
            name="forgetting",
            field=models.CharField(default="never", max_length=16),
        ),
        migrations.AlterField(
            model_name="test",
            name="forgetting",
            field=models.CharField(default="on_change", max_length=16),
        ),
    ]
