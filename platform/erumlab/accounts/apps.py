from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "erumlab.accounts"
    label = "accounts"
    verbose_name = "Accounts and collaborations"
