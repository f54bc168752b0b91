from django.db import migrations, models


class Migration(migrations.Migration):
    """The prior of a 0/1 reward's rate, and focused sampling. Tests that exist keep what they
    learned with (a flat prior, their sampling rule); new Tests default to a prior centred on
    the Test's pooled rate and to focused sampling."""

    dependencies = [
        ("bandit", "0003_sampling"),
    ]

    operations = [
        migrations.AddField(
            model_name="test",
            name="prior",
            field=models.CharField(default="flat", max_length=16),
        ),
        migrations.AlterField(
            model_name="test",
            name="prior",
            field=models.CharField(default="pooled", max_length=16),
        ),
        migrations.AlterField(
            model_name="test",
            name="sampling",
            field=models.CharField(default="focused", max_length=16),
        ),
    ]
