from django.db import migrations, models


class Migration(migrations.Migration):
    """How a decision's posterior draws are used. Tests that exist keep standard Thompson
    sampling, which they learned with; new Tests default to optimistic sampling."""

    dependencies = [
        ("bandit", "0002_checkpoint"),
    ]

    operations = [
        migrations.AddField(
            model_name="test",
            name="sampling",
            field=models.CharField(default="standard", max_length=16),
        ),
        migrations.AlterField(
            model_name="test",
            name="sampling",
            field=models.CharField(default="optimistic", max_length=16),
        ),
    ]
