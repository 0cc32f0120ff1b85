"""Payment gateways behind one interface (`base.PaymentProvider`)."""
