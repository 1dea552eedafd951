"""Grid carbon intensity by country: gCO2e per kWh of electricity generated, year 2024.

Source: Ember, *Yearly Electricity Data* (country overview,
``emissions_intensity_gco2_per_kwh``), data year 2024, licensed CC BY 4.0:
https://ember-climate.org/data-catalogue/yearly-electricity-data/
Figures are Ember's lifecycle intensities (all gases as CO2 equivalents over 100 years,
upstream and manufacturing emissions included) of each country's generation mix
(imports excluded). They were taken from the compilation of that data in The Green
Web Foundation's co2.js (``data/output/average-intensities.json``), cross-checked
against Our World in Data's chart "Carbon intensity of electricity generation" (which
republishes Ember's figures). Only countries whose latest figure is for 2024 are
listed; ``WORLD`` (the default) and ``EU`` are Ember's aggregates.

Keys are ISO 3166-1 alpha-2 codes (``GB``, not ``UK``). A country that is missing, or a
grid region (a US state, a cloud region), is set with the plan's explicit
``energy.carbon_intensity_g_per_kwh`` instead.
"""

from __future__ import annotations

SOURCE = "Ember Yearly Electricity Data"
YEAR = 2024

# code: (name, gCO2e/kWh)
INTENSITY: dict[str, tuple[str, float]] = {
    "WORLD": ("World", 473.05),
    "EU": ("European Union", 213.31),
    "AM": ("Armenia", 244.34),
    "AR": ("Argentina", 358.95),
    "AT": ("Austria", 102.62),
    "AU": ("Australia", 551.59),
    "AZ": ("Azerbaijan", 633.07),
    "BA": ("Bosnia and Herzegovina", 637.76),
    "BD": ("Bangladesh", 694.63),
    "BE": ("Belgium", 117.58),
    "BG": ("Bulgaria", 264.21),
    "BO": ("Bolivia", 468.02),
    "BR": ("Brazil", 103.21),
    "BY": ("Belarus", 313.62),
    "CA": ("Canada", 174.81),
    "CH": ("Switzerland", 36.6),
    "CL": ("Chile", 265.52),
    "CN": ("China", 559.55),
    "CO": ("Colombia", 285.8),
    "CR": ("Costa Rica", 63.01),
    "CY": ("Cyprus", 512.24),
    "CZ": ("Czechia", 413.86),
    "DE": ("Germany", 344.14),
    "DK": ("Denmark", 143.3),
    "DO": ("Dominican Republic", 566.05),
    "EC": ("Ecuador", 209.7),
    "EE": ("Estonia", 341.02),
    "EG": ("Egypt", 571.92),
    "ES": ("Spain", 146.15),
    "FI": ("Finland", 72.25),
    "FR": ("France", 44.18),
    "GB": ("United Kingdom", 210.89),
    "GE": ("Georgia", 143.06),
    "GR": ("Greece", 319.76),
    "HR": ("Croatia", 174.48),
    "HU": ("Hungary", 182.82),
    "IE": ("Ireland", 279.7),
    "IN": ("India", 708.32),
    "IR": ("Iran", 641.94),
    "IT": ("Italy", 287.53),
    "JP": ("Japan", 482.32),
    "KE": ("Kenya", 88.79),
    "KG": ("Kyrgyzstan", 162.71),
    "KH": ("Cambodia", 497.46),
    "KR": ("South Korea", 414.27),
    "KW": ("Kuwait", 637.24),
    "KZ": ("Kazakhstan", 801.95),
    "LT": ("Lithuania", 139.34),
    "LU": ("Luxembourg", 134.62),
    "LV": ("Latvia", 136.22),
    "MA": ("Morocco", 577.65),
    "MD": ("Moldova", 631.68),
    "ME": ("Montenegro", 413.51),
    "MK": ("North Macedonia", 568.97),
    "MM": ("Myanmar", 578.82),
    "MN": ("Mongolia", 784.01),
    "MT": ("Malta", 484.16),
    "MX": ("Mexico", 484.83),
    "MY": ("Malaysia", 609.85),
    "NG": ("Nigeria", 507.85),
    "NL": ("Netherlands", 253.31),
    "NO": ("Norway", 30.75),
    "NZ": ("New Zealand", 120.11),
    "OM": ("Oman", 545.25),
    "PE": ("Peru", 263.27),
    "PH": ("Philippines", 613.38),
    "PK": ("Pakistan", 398.61),
    "PL": ("Poland", 614.98),
    "PR": ("Puerto Rico", 664.53),
    "PT": ("Portugal", 112.29),
    "QA": ("Qatar", 602.83),
    "RO": ("Romania", 245.55),
    "RS": ("Serbia", 673.16),
    "RU": ("Russia", 449.2),
    "SE": ("Sweden", 35.82),
    "SG": ("Singapore", 498.74),
    "SI": ("Slovenia", 227.65),
    "SK": ("Slovakia", 96.49),
    "SV": ("El Salvador", 103.13),
    "TH": ("Thailand", 554.5),
    "TJ": ("Tajikistan", 112.79),
    "TN": ("Tunisia", 560.25),
    "TR": ("Türkiye", 469.7),
    "TW": ("Taiwan", 635.65),
    "US": ("United States", 383.55),
    "UY": ("Uruguay", 96.7),
    "VN": ("Viet Nam", 471.16),
    "ZA": ("South Africa", 708.88),
}
