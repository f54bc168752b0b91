from django.db import migrations, models


class Migration(migrations.Migration):
    """A Test's reward window and default reward: off for every Test, new or old, until an
    operator turns it on."""

    dependencies = [
        ("bandit", "0005_forgetting"),
    ]

    operations = [
        migrations.AddField(
            model_name="test",
            name="reward_window_seconds",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="test",
            name="default_reward",
            field=models.FloatField(default=0.0),
        ),
        migrations.AddField(
            model_name="test",
            name="reward_windows_close_by",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
